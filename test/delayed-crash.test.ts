import { describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { startBrokerProcess } from './helpers/broker-process.js'
import { crashClientOptions, crashTestClients } from './helpers/crash-clients.js'
import { connectCollecting, type Received } from './helpers/connect.js'
import { uniqueTopic } from './helpers/start-broker.js'
import { waitForEvent } from './helpers/mqtt-helpers.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

describe('delayed messages across kill -9 of the broker', () => {
  const { connect, track } = crashTestClients()

  /** Registers a persistent session subscribed to `filter`, then leaves. */
  async function sleeper (url: string, clientId: string, filter: string): Promise<void> {
    const c = await connect(url, clientId, false)
    await c.subscribeAsync(filter, { qos: 1 })
    await c.endAsync()
  }

  /** Resumes a persistent session, stamping each message with its arrival time (Date.now()). */
  async function connectTimed (url: string, clientId: string): Promise<{ received: Array<Received & { at: number }> }> {
    const received: Array<Received & { at: number }> = []
    const client = mqtt.connect(url, { ...crashClientOptions, clientId, clean: false })
    track(client)
    // attached before CONNECT goes out: queued messages can come with the CONNACK
    client.on('message', (topic, payload, packet) => { received.push({ topic, payload: payload.toString(), packet, at: Date.now() }) })
    await waitForEvent(client, 'connect')
    return { received }
  }

  it('publishes every PUBACKed delayed message once, at its time, after SIGKILL before it was due', async () => {
    const broker = await startBrokerProcess()
    const t = uniqueTopic('crash')
    await sleeper(broker.url, 'delayed-crash-sleeper', `${t}/#`)
    const pub = await connect(broker.url, 'delayed-crash-pub', true)
    const n = 50
    const sentAt = Date.now()
    // Long enough that the second broker (about a second to spawn) is up before they are due.
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publishAsync(`$delayed/3/${t}/n`, String(i), { qos: 1 })))
    await broker.kill()
    expect(Date.now() - sentAt, 'killed before any was due').toBeLessThan(3000)

    await broker.restart()
    const back = await connectTimed(broker.url, 'delayed-crash-sleeper')
    const distinct = (): Set<string> => new Set(back.received.map((m) => m.payload))
    await waitUntil(() => distinct().size === n, () => `all ${n} delayed messages (have ${distinct().size})`)
    // None had fired before the kill, so there is nothing to send twice.
    await expectNothingFor(300, () => back.received.length > n, () => `a duplicate: ${back.received.map((m) => m.payload).join(',')}`)
    expect(back.received.map((m) => Number(m.payload))).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(back.received.every((m) => m.topic === `${t}/n` && m.packet.qos === 1)).toBe(true)
    // Date.now() in both processes reads the same clock: each was due at least 3 s after sentAt.
    expect(Math.min(...back.received.map((m) => m.at)) - sentAt).toBeGreaterThanOrEqual(3000)
  })

  it('loses none of a large batch when killed while it is being published (at least once)', async () => {
    const broker = await startBrokerProcess()
    const t = uniqueTopic('batch')
    const received: Received[] = []
    const online = await connectCollecting(broker.url, { clientId: 'delayed-batch-sub', clean: false }, received)
    track(online.client)
    await online.client.subscribeAsync(`${t}/#`, { qos: 1 })
    const pub = await connect(broker.url, 'delayed-batch-pub', true)
    const n = 5000
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publishAsync(`$delayed/2/${t}/n`, String(i), { qos: 1 })))

    // Killed mid-way through firing: some delivered, the rest stored or half-published.
    await waitUntil(() => received.length >= n / 5, 'the batch to start firing')
    await broker.kill()
    const beforeKill = new Set(received.map((m) => m.payload)).size
    expect(beforeKill, 'killed before the whole batch was delivered').toBeLessThan(n)
    await online.client.endAsync(true)

    await broker.restart()
    const again = await connectCollecting(broker.url, { clientId: 'delayed-batch-sub', clean: false }, received)
    track(again.client)
    const distinct = (): Set<string> => new Set(received.map((m) => m.payload))
    await waitUntil(() => distinct().size === n, () => `all ${n} messages (have ${distinct().size}, ${beforeKill} before the kill)`, 30_000)
    expect([...distinct()].map(Number).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(received.every((m) => m.topic === `${t}/n`)).toBe(true)
  })
})
