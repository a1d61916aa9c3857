import { afterEach, describe, expect, it } from 'vitest'
import { ManualClock } from '../broker/index.js'
import { ErrorCodes, connect, createWorker, type Client, type Worker } from '../client/index.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

const thumb = { imageUrl: 'https://example.com/a.png', width: 10, height: 10 }
const T0 = Date.parse('2026-01-01T00:00:00Z')

// The broker runs on a ManualClock (docs/scheduling.md): "no sooner than the
// delay" is checked exactly, one millisecond before the due time and at it.
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
    const clock = new ManualClock(T0)
    b = await startBroker({ clock })
    const c = await client()
    const topic = uniqueTopic('later')
    const got: Array<{ qos: number, text: string }> = []
    await c.subscribe(`${topic}/#`, (m) => { got.push({ qos: m.packet.qos, text: m.payload.toString() }) }, { qos: 1 })
    // resolves once the broker has stored it
    await c.publish(`${topic}/a`, 'hi', { qos: 1, delay: 400 })
    expect(b.broker.stats().delayed).toMatchObject({ accepted: 1, pending: 1, nextDueAt: new Date(T0 + 400).toISOString() })
    clock.set(T0 + 399)
    await expectNothingFor(200, () => got.length > 0, 'the message before its delay')
    clock.set(T0 + 400)
    await waitUntil(() => got.length === 1, 'the delayed message')
    expect(got[0]).toMatchObject({ qos: 1, text: 'hi' })
    await expect(c.publish(`${topic}/a`, 'x', { delay: -5 })).rejects.toMatchObject({ code: ErrorCodes.DELAY_INVALID })
    await expect(c.publish(`${topic}/a`, 'x', { delay: Infinity })).rejects.toMatchObject({ code: ErrorCodes.DELAY_INVALID })
    await waitUntil(() => b!.broker.stats().delayed.fired === 1, 'the fired count')
    expect(b.broker.stats().delayed).toMatchObject({ accepted: 1, fired: 1, pending: 0 })
  })

  it('submit(..., { delay }) reaches a worker no sooner than the delay and result() resolves', async () => {
    const clock = new ManualClock(T0)
    b = await startBroker({ clock })
    let started = 0
    const worker = await createWorker(await client(), 'thumbnail', () => { started++; return 'done' })
    workers.push(worker)
    const producer = await client()
    const handle = await producer.submit('thumbnail', thumb, { delay: 500 })
    expect(b.broker.stats().delayed).toMatchObject({ pending: 1, nextDueAt: new Date(T0 + 500).toISOString() })
    clock.set(T0 + 499)
    await expectNothingFor(200, () => started > 0, 'the task before its delay')
    clock.set(T0 + 500)
    await expect(handle.result()).resolves.toBe('done')
    expect(started).toBe(1)
  })
})
