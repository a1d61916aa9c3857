import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { connect, type Client } from '../client/client.js'
import { createWorker, type Worker } from '../client/worker.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { testSchemas } from './helpers/task-schemas.js'
import { waitUntil } from './helpers/wait.js'

const childPath = fileURLToPath(new URL('./helpers/worker-child.ts', import.meta.url))
const tsxLoader = import.meta.resolve('tsx')

interface WorkerChild { child: ChildProcess, lines: string[], exited: Promise<void> }

function spawnWorker (url: string, concurrency: number): WorkerChild {
  const child = spawn(process.execPath, ['--import', tsxLoader, childPath, url, String(concurrency)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines: string[] = []
  createInterface({ input: child.stdout! }).on('line', (line) => lines.push(line))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return { child, lines, exited }
}

describe('a worker killed with SIGKILL mid-task', () => {
  let b: TestBroker | undefined
  const clients: Client[] = []
  const workers: Worker[] = []
  const children: WorkerChild[] = []
  afterEach(async () => {
    for (const c of children.splice(0)) {
      c.child.kill('SIGKILL')
      await c.exited
    }
    await Promise.all(workers.splice(0).map((w) => w.close({ timeoutMs: 500 })))
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await b?.close()
    b = undefined
  })

  it('loses nothing: its tasks complete on another worker and result() resolves', async () => {
    b = await startBroker()
    const crashing = spawnWorker(b.url, 2)
    children.push(crashing)
    await waitUntil(() => crashing.lines.includes('ready'), 'the child worker to subscribe', 30_000)

    const producer = await connect(b.url, { schemas: await testSchemas() })
    clients.push(producer)
    const handles = await Promise.all([1, 2].map((n) => producer.submit('thumbnail', { imageUrl: `https://example.com/${n}.png`, width: n, height: n })))
    const startedIds = (): string[] => crashing.lines.filter((l) => l.startsWith('started ')).map((l) => l.split(' ')[1]!)
    await waitUntil(() => startedIds().length === 2, 'the child to take both tasks')
    expect(new Set(startedIds())).toEqual(new Set(handles.map((h) => h.id)))

    const rescuerClient = await connect(b.url, { schemas: await testSchemas() })
    clients.push(rescuerClient)
    const rescued: Array<{ id: string, deliveryCount: number }> = []
    workers.push(await createWorker(rescuerClient, 'thumbnail', (p, ctx) => {
      rescued.push({ id: ctx.id, deliveryCount: ctx.deliveryCount })
      return p.width * 10
    }))

    crashing.child.kill('SIGKILL')
    await crashing.exited
    await expect(Promise.all(handles.map((h) => h.result()))).resolves.toEqual([10, 20])
    expect(rescued.map((r) => r.id).sort()).toEqual(handles.map((h) => h.id).sort())
    // the broker counted the lost delivery
    expect(rescued.map((r) => r.deliveryCount)).toEqual([2, 2])
  })
})
