import { afterEach, describe, expect, it } from 'vitest'
import { ClientErrorCodes, connect, createWorker, type Client, type Worker } from '../client/index.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { waitUntil } from './helpers/wait.js'

const thumb = { imageUrl: 'https://example.com/a.png', width: 10, height: 10 }

describe('client: publish and submit with { delay }', () => {
  let b: TestBroker | undefined
  const clients: Client[] = []
  const workers: Worker[] = []
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close()))
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await b?.close()
    b = undefined
  })

  async function client (): Promise<Client> {
    const c = await connect(b!.url, { reconnectPeriod: 0 })
    clients.push(c)
    return c
  }

  it('publish(..., { delay }) arrives after the delay with its QoS; a bad delay is refused before sending', async () => {
    b = await startBroker()
    const c = await client()
    const topic = uniqueTopic('later')
    const got: Array<{ at: number, qos: number, text: string }> = []
    await c.subscribe(`${topic}/#`, (m) => { got.push({ at: performance.now(), qos: m.packet.qos, text: m.payload.toString() }) }, { qos: 1 })
    const sent = performance.now()
    await c.publish(`${topic}/a`, 'hi', { qos: 1, delay: 400 })
    await waitUntil(() => got.length === 1, 'the delayed message')
    expect(got[0]).toMatchObject({ qos: 1, text: 'hi' })
    expect(got[0]!.at - sent).toBeGreaterThanOrEqual(390)
    await expect(c.publish(`${topic}/a`, 'x', { delay: -5 })).rejects.toMatchObject({ code: ClientErrorCodes.DELAY_INVALID })
    await expect(c.publish(`${topic}/a`, 'x', { delay: Infinity })).rejects.toMatchObject({ code: ClientErrorCodes.DELAY_INVALID })
    await waitUntil(() => b!.broker.stats().delayed.fired === 1, 'the fired count')
    expect(b.broker.stats().delayed).toMatchObject({ accepted: 1, fired: 1, pending: 0 })
  })

  it('submit(..., { delay }) reaches a worker no sooner than the delay and result() resolves', async () => {
    b = await startBroker()
    const started: number[] = []
    const worker = await createWorker(await client(), 'thumbnail', () => { started.push(performance.now()); return 'done' })
    workers.push(worker)
    const producer = await client()
    const submitted = performance.now()
    const handle = await producer.submit('thumbnail', thumb, { delay: 500 })
    expect(b.broker.stats().delayed.pending).toBe(1)
    await expect(handle.result()).resolves.toBe('done')
    expect(started).toHaveLength(1)
    expect(started[0]! - submitted).toBeGreaterThanOrEqual(490)
  })
})
