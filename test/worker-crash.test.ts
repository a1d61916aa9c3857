import { afterEach, describe, expect, it } from 'vitest'
import { connect, type Client } from '../client/client.js'
import { createWorker, type Worker } from '../client/worker.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { testSchemas } from './helpers/task-schemas.js'
import { waitUntil } from './helpers/wait.js'
import { startWorkerProcess } from './helpers/worker-process.js'

describe('a worker killed with SIGKILL mid-task', () => {
  let b: TestBroker | undefined
  const clients: Client[] = []
  const workers: Worker[] = []
  // The worker process is killed when each test ends, if the test did not.
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close({ timeoutMs: 500 })))
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await b?.close()
    b = undefined
  })

  it('loses nothing: its tasks complete on another worker and result() resolves', async () => {
    b = await startBroker()
    const crashing = await startWorkerProcess(b.url, { concurrency: 2 })

    const producer = await connect(b.url, { schemas: await testSchemas() })
    clients.push(producer)
    const handles = await Promise.all([1, 2].map((n) => producer.submit('thumbnail', { imageUrl: `https://example.com/${n}.png`, width: n, height: n })))
    const startedIds = crashing.startedIds
    await waitUntil(() => startedIds().length === 2, 'the child to take both tasks')
    expect(new Set(startedIds())).toEqual(new Set(handles.map((h) => h.id)))

    const rescuerClient = await connect(b.url, { schemas: await testSchemas() })
    clients.push(rescuerClient)
    const rescued: Array<{ id: string, deliveryCount: number }> = []
    workers.push(await createWorker(rescuerClient, 'thumbnail', (p, ctx) => {
      rescued.push({ id: ctx.id, deliveryCount: ctx.deliveryCount })
      return p.width * 10
    }))

    await crashing.kill()
    await expect(Promise.all(handles.map((h) => h.result()))).resolves.toEqual([10, 20])
    expect(rescued.map((r) => r.id).sort()).toEqual(handles.map((h) => h.id).sort())
    // the broker counted the lost delivery
    expect(rescued.map((r) => r.deliveryCount)).toEqual([2, 2])
  })
})
