import { afterEach, describe, expect, it } from 'vitest'
import { connect, createWorker, type Client, type Worker } from '../client/index.js'
import { resultFilter, replyFilter } from '../protocol/topics.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { testSchemas } from './helpers/task-schemas.js'

const thumb = { imageUrl: 'https://example.com/a.png', width: 64, height: 64 }

// A clean session is discarded with its connection, unacknowledged QoS 1
// messages included [MQTT-3.1.2-6]: QoS 1 buys a clean producer nothing for
// its results but a PUBACK each. A persistent session needs QoS 1 for its
// results to wait while it is offline (docs/client.md, "Topics").
describe('client: the QoS of its results and replies subscriptions', () => {
  let b: TestBroker | undefined
  const clients: Client[] = []
  const workers: Worker[] = []
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close({ timeoutMs: 1000 })))
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await b?.close()
    b = undefined
  })

  async function client (options: Parameters<typeof connect>[1] = {}): Promise<Client> {
    const c = await connect(b!.url, { schemas: await testSchemas(), ...options })
    clients.push(c)
    return c
  }

  function grantedQos (clientId: string, filter: string): number | undefined {
    return b!.broker.admin.client(clientId).subscriptions.find((s) => s.topic === filter)?.qos
  }

  it('a clean session subscribes at QoS 0 and still gets its results, progress and schedule replies', async () => {
    b = await startBroker()
    const workerClient = await client()
    workers.push(await createWorker(workerClient, 'thumbnail', async (p, ctx) => {
      await ctx.progress(50)
      return { url: `${p.imageUrl}?w=${p.width}` }
    }))
    const producer = await client({ clientId: 'clean-producer' })
    const handle = await producer.submit('thumbnail', thumb)
    const progress: number[] = []
    handle.on('progress', (value) => progress.push(value))
    await expect(handle.result()).resolves.toEqual({ url: 'https://example.com/a.png?w=64' })
    expect(progress).toEqual([50])
    expect(grantedQos('clean-producer', resultFilter('clean-producer'))).toBe(0)

    await expect(producer.schedules.list()).resolves.toEqual([])
    expect(grantedQos('clean-producer', replyFilter('clean-producer'))).toBe(0)
  })

  it('a persistent session subscribes at QoS 1', async () => {
    b = await startBroker()
    const producer = await client({ clientId: 'kept-producer', clean: false })
    await producer.submit('thumbnail', thumb)
    expect(grantedQos('kept-producer', resultFilter('kept-producer'))).toBe(1)
    await producer.schedules.list()
    expect(grantedQos('kept-producer', replyFilter('kept-producer'))).toBe(1)
  })
})
