import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { connect, createWorker, type Client, type TaskHandle, type Worker } from '../client/index.js'
import { spawnNodeChild } from './helpers/child-process.js'
import { deferred } from './helpers/deferred.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { testSchemas } from './helpers/task-schemas.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

interface Thumb { imageUrl: string, width: number, height: number }
const thumb = (n: number): Thumb => ({ imageUrl: `https://example.com/c/${n}.png`, width: n, height: 1 })

describe('a worker with concurrency N on one connection', () => {
  let b: TestBroker | undefined
  const clients: Client[] = []
  const workers: Worker[] = []
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close({ timeoutMs: 500 })))
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await b?.close()
    b = undefined
  })

  async function client (options: Parameters<typeof connect>[1] = {}): Promise<Client> {
    const c = await connect(b!.url, { schemas: await testSchemas(), reconnectPeriod: 100, ...options })
    clients.push(c)
    return c
  }

  const group = (): { inflight: number, members: Array<{ clientId: string, inflight: number, prefetch: number }> } | undefined =>
    b!.broker.stats().sharedGroups.find((g) => g.group === 'thumbnail')

  it('holds one connection whatever its concurrency, runs N tasks at once on it, and sets its window to N', async () => {
    b = await startBroker()
    const release = deferred()
    let running = 0
    let peak = 0
    const w = await createWorker(await client({ clientId: 'wc' }), 'thumbnail', async (p) => {
      running++
      peak = Math.max(peak, running)
      await release.promise
      running--
      return p.width
    }, { concurrency: 8, clientId: 'wc-thumbs' })
    workers.push(w)
    // the worker's client and the worker's one connection
    expect(b.broker.admin.clients().map((c) => c.clientId).sort()).toEqual(['wc', 'wc-thumbs'])
    expect(group()?.members).toEqual([{ clientId: 'wc-thumbs', inflight: 0, prefetch: 8 }])

    const producer = await client()
    const handles = await Promise.all(Array.from({ length: 12 }, (_, i) => producer.submit('thumbnail', thumb(i + 1))))
    await waitUntil(() => running === 8, '8 tasks running')
    expect(w.running).toBe(8)
    await expectNothingFor(100, () => running > 8, 'a ninth task at once')
    expect(b.broker.stats().connectedClients).toBe(3)
    release.resolve()
    await expect(Promise.all(handles.map((h) => h.result()))).resolves.toEqual(Array.from({ length: 12 }, (_, i) => i + 1))
    expect(peak).toBe(8)
    await waitUntil(() => group()?.inflight === 0, 'every task acknowledged')
  })

  it('acknowledges in order: a slow first task holds back the PUBACKs of the later ones, which go out once it settles', async () => {
    b = await startBroker()
    const release = deferred()
    const completed: number[] = []
    const w = await createWorker(await client(), 'thumbnail', async (p) => {
      if (p.width === 1) await release.promise
      return p.width
    }, { concurrency: 4, clientId: 'in-order' })
    workers.push(w)
    w.on('completed', (e) => completed.push((e.result as number)))
    const producer = await client()
    // one by one, so the broker sends them in this order
    const first = await producer.submit('thumbnail', thumb(1))
    const later = [await producer.submit('thumbnail', thumb(2)), await producer.submit('thumbnail', thumb(3)), await producer.submit('thumbnail', thumb(4))]
    // the later ones complete (their results reach the producer)...
    await expect(Promise.all(later.map((h) => h.result()))).resolves.toEqual([2, 3, 4])
    // ...but none is acknowledged while the first one runs
    await expectNothingFor(200, () => (group()?.inflight ?? 0) < 4, 'a PUBACK ahead of the first task\'s')
    expect(group()?.members).toEqual([{ clientId: 'in-order', inflight: 4, prefetch: 4 }])
    release.resolve()
    await expect(first.result()).resolves.toBe(1)
    await waitUntil(() => group()?.inflight === 0, 'all four acknowledged')
    expect(completed).toEqual([2, 3, 4, 1])
  })

  it('a worker killed while a slow task holds back finished ones loses nothing: all are redelivered and complete', async () => {
    b = await startBroker()
    const child = spawnNodeChild(new URL('./worker-ack-order-child.ts', import.meta.url), [b.url, '4'])
    onTestFinished(async () => { await child.kill('SIGKILL') })
    await child.waitForLine((l) => l === 'ready', 'the child worker to subscribe')

    const producer = await client()
    const handles: TaskHandle[] = []
    for (let n = 1; n <= 4; n++) handles.push(await producer.submit('thumbnail', thumb(n)))
    // Tasks 2-4 finished, and their results are out: the first still runs.
    await child.waitForLine((l) => l === `completed ${handles[3]!.id}`, 'the fourth task to complete in the child')
    const completedInChild = child.lines.filter((l) => l.startsWith('completed ')).map((l) => l.split(' ')[1])
    expect(completedInChild.sort()).toEqual(handles.slice(1).map((h) => h.id).sort())
    await expect(Promise.all(handles.slice(1).map((h) => h.result()))).resolves.toEqual([2, 3, 4])
    expect(group()?.inflight).toBe(4)

    // The rescuer gets every task back, the finished ones too: their PUBACKs
    // never went out (at-least-once: a handler may run twice).
    const rescued = new Map<string, number>()
    workers.push(await createWorker(await client(), 'thumbnail', (p, ctx) => {
      rescued.set(ctx.id, ctx.deliveryCount)
      return p.width * 10
    }, { concurrency: 4 }))
    await child.kill('SIGKILL')
    await expect(handles[0]!.result()).resolves.toBe(10)
    await waitUntil(() => rescued.size === 4, 'all four tasks redelivered')
    expect([...rescued.keys()].sort()).toEqual(handles.map((h) => h.id).sort())
    expect([...rescued.values()]).toEqual([2, 2, 2, 2])
    await waitUntil(() => group()?.inflight === 0, 'the redeliveries acknowledged')
    expect(b.broker.stats().sharedGroups.find((g) => g.group === 'thumbnail')).toMatchObject({ depth: 0, inflight: 0 })
  })
})
