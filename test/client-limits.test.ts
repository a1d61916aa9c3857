import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import type { BrokerOptions } from '../broker/index.js'
import { Clients, waitForEvent, waitForMessages, waitUntil } from './helpers/mqtt-helpers.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'

/*
 * Each per-client limit of `limits.*` (docs/security.md) is hit on purpose:
 * the offender gets the refusal MQTT 3.1.1 allows (CONNACK 0x02, SUBACK
 * 0x80, a disconnect) or is slowed down, the hit is counted in
 * stats().limits, and another client goes on exchanging messages.
 */

const brokers: TestBroker[] = []
const clients = new Clients()

async function start (options: BrokerOptions = {}): Promise<TestBroker> {
  const broker = await startBroker(options)
  brokers.push(broker)
  return broker
}

afterEach(async () => {
  await clients.closeAll()
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})

/** A raw socket that sends `packets` and resolves with every packet the broker answered, once it closed the connection. */
async function rawSession (port: number, packets: Packet[]): Promise<{ answers: Packet[], socket: Socket }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => undefined)
  await once(socket, 'connect')
  const answers: Packet[] = []
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  parser.on('packet', (packet: Packet) => answers.push(packet))
  socket.on('data', (chunk) => parser.parse(chunk))
  for (const packet of packets) socket.write(mqttPacket.generate(packet))
  return { answers, socket }
}

function connectPacket (clientId: string, keepalive = 60): Packet {
  return { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive } as Packet
}

/** Another client still gets its messages: the limit cost only the offender. */
async function roundTrip (url: string): Promise<void> {
  const topic = uniqueTopic('bystander')
  const sub = await clients.connect(url)
  await sub.client.subscribeAsync(topic, { qos: 1 })
  const pub = await clients.connect(url)
  await pub.client.publishAsync(topic, 'still here', { qos: 1 })
  await waitForMessages(sub.messages, 1, 'the bystander round trip')
}

async function closed (socket: Socket): Promise<void> {
  if (socket.destroyed || socket.readableEnded) return
  await once(socket, 'close')
}

describe('per-client limits', () => {
  it('a client id longer than limits.maxClientIdBytes gets CONNACK 0x02 and is counted', async () => {
    const b = await start({ limits: { maxClientIdBytes: 16 } })
    const { answers, socket } = await rawSession(b.port, [connectPacket('x'.repeat(17))])
    await closed(socket)
    expect(answers).toEqual([expect.objectContaining({ cmd: 'connack', returnCode: 2 })])
    expect(b.broker.stats().limits.maxClientIdBytes).toBe(1)
    // One byte less is fine; a multi-byte character counts as its UTF-8 bytes.
    const ok = await clients.connect(b.url, { clientId: 'x'.repeat(16) })
    expect(ok.connack.returnCode).toBe(0)
    const { answers: wide, socket: wideSocket } = await rawSession(b.port, [connectPacket('é'.repeat(9))])
    await closed(wideSocket)
    expect(wide).toEqual([expect.objectContaining({ cmd: 'connack', returnCode: 2 })])
    await roundTrip(b.url)
  })

  it('a keep-alive outside limits.minKeepaliveSeconds..maxKeepaliveSeconds gets CONNACK 0x02', async () => {
    const b = await start({ limits: { minKeepaliveSeconds: 5, maxKeepaliveSeconds: 120 } })
    for (const keepalive of [0, 4, 121]) {
      const { answers, socket } = await rawSession(b.port, [connectPacket(uniqueTopic('ka'), keepalive)])
      await closed(socket)
      expect(answers, `keepalive ${keepalive}`).toEqual([expect.objectContaining({ cmd: 'connack', returnCode: 2 })])
    }
    expect(b.broker.stats().limits.keepaliveBounds).toBe(3)
    const ok = await clients.connect(b.url, { keepalive: 120 })
    expect(ok.connack.returnCode).toBe(0)
  })

  it('a PUBLISH topic over limits.maxTopicBytes or maxTopicLevels disconnects the publisher; nothing is delivered', async () => {
    const b = await start({ limits: { maxTopicBytes: 64, maxTopicLevels: 4 } })
    const watcher = await clients.connect(b.url)
    await watcher.client.subscribeAsync('#', { qos: 1 })
    for (const topic of ['long/' + 'x'.repeat(64), 'a/b/c/d/e']) {
      const { client } = await clients.connect(b.url)
      const gone = waitForEvent(client, 'close')
      client.publish(topic, 'refused', { qos: 1 })
      await gone
    }
    const limits = b.broker.stats().limits
    expect([limits.maxTopicBytes, limits.maxTopicLevels]).toEqual([1, 1])
    const marker = await clients.connect(b.url)
    await marker.client.publishAsync('a/b/c/d', 'allowed', { qos: 1 })
    await waitForMessages(watcher.messages, 1, 'the allowed publish')
    expect(watcher.messages.map((m) => m.topic)).toEqual(['a/b/c/d'])
  })

  it("a PUBLISH beyond Aedes's own 100 levels is refused by Aedes before the hooks, and still counted under maxTopicLevels", async () => {
    const b = await start({ limits: { maxTopicLevels: 100 } })
    const { client } = await clients.connect(b.url)
    const gone = waitForEvent(client, 'close')
    client.publish(Array.from({ length: 101 }, () => 'l').join('/'), 'deep', { qos: 1 })
    await gone
    await waitUntil(() => b.broker.stats().limits.maxTopicLevels === 1, 'the refusal to be counted')
    await roundTrip(b.url)
  })

  it('a filter over the topic limits, or beyond limits.maxSubscriptionsPerClient, gets SUBACK 0x80; the connection stays', async () => {
    const b = await start({ limits: { maxTopicLevels: 4, maxSubscriptionsPerClient: 2 } })
    const { client, messages } = await clients.connect(b.url)
    const granted: number[][] = []
    client.on('packetreceive', (packet) => { if (packet.cmd === 'suback') granted.push(packet.granted as number[]) })
    const topic = uniqueTopic('subs')
    client.subscribe([`${topic}/1`, 'a/b/c/d/e'], { qos: 1 })
    client.subscribe([`${topic}/2`, `${topic}/3`, `${topic}/1`], { qos: 1 })
    await waitUntil(() => granted.length === 2, 'two SUBACKs')
    // The third filter is one too many; re-subscribing to a held one is not.
    expect(granted).toEqual([[1, 128], [1, 128, 1]])
    const limits = b.broker.stats().limits
    expect([limits.maxTopicLevels, limits.maxSubscriptionsPerClient]).toEqual([1, 1])
    await client.publishAsync(`${topic}/2`, 'x', { qos: 1 })
    await client.publishAsync(`${topic}/3`, 'y', { qos: 1 })
    await waitForMessages(messages, 1, 'the message on the granted filter')
    await client.publishAsync(`${topic}/1`, 'z', { qos: 1 })
    await waitForMessages(messages, 2, 'the message on the first filter')
    expect(messages.map((m) => m.payload)).toEqual(['x', 'z'])
  })

  it('a publisher over limits.publishesPerSecondPerClient is slowed down, not cut off: every message arrives', async () => {
    const b = await start({ limits: { publishesPerSecondPerClient: 100 } })
    const topic = uniqueTopic('rate')
    const sub = await clients.connect(b.url)
    await sub.client.subscribeAsync(topic, { qos: 1 })
    const pub = await clients.connect(b.url)
    const started = Date.now()
    // One at a time, so each is its own read: the burst is 200 (twice the
    // rate), and the 100 after it take about a second at 100/s.
    for (let i = 0; i < 300; i++) await pub.client.publishAsync(topic, String(i), { qos: 1 })
    await waitForMessages(sub.messages, 300, 'every throttled message')
    expect(sub.messages.map((m) => Number(m.payload))).toEqual(Array.from({ length: 300 }, (_, i) => i))
    expect(b.broker.stats().limits.publishesPerSecondPerClient).toBeGreaterThan(0)
    expect(Date.now() - started).toBeGreaterThan(800)
  })

  it('more QoS 2 PUBLISH packets waiting for PUBREL than limits.maxInflightInbound disconnects the client', async () => {
    const b = await start({ limits: { maxInflightInbound: 5 } })
    const topic = uniqueTopic('qos2')
    const { answers, socket } = await rawSession(b.port, [connectPacket(uniqueTopic('q2'))])
    // Each PUBREC in turn, and never the PUBREL: five wait for it.
    for (let i = 1; i <= 6; i++) {
      socket.write(mqttPacket.generate({ cmd: 'publish', topic, payload: String(i), qos: 2, messageId: i, retain: false, dup: false }))
      if (i <= 5) await waitUntil(() => answers.filter((p) => p.cmd === 'pubrec').length === i, `PUBREC ${i}`)
    }
    await closed(socket)
    expect(answers.filter((p) => p.cmd === 'pubrec')).toHaveLength(5)
    expect(b.broker.stats().limits.maxInflightInbound).toBe(1)
    await roundTrip(b.url)
  })

  it('a socket that never sends CONNECT is closed after limits.connectTimeoutMs and counted', async () => {
    const b = await start({ limits: { connectTimeoutMs: 300 } })
    const socket = connect(b.port, '127.0.0.1')
    socket.on('error', () => undefined)
    await once(socket, 'connect')
    const opened = Date.now()
    await once(socket, 'close')
    expect(Date.now() - opened).toBeGreaterThanOrEqual(250)
    await waitUntil(() => b.broker.stats().limits.connectTimeoutMs === 1, 'the timeout to be counted')
    await roundTrip(b.url)
  })

  it('messages beyond maxQueuedPerClient for an offline session are counted under limits', async () => {
    const b = await start({ maxQueuedPerClient: 3 })
    const topic = uniqueTopic('queued')
    const offline = await clients.connect(b.url, { clientId: uniqueTopic('offline'), clean: false })
    await offline.client.subscribeAsync(topic, { qos: 1 })
    await offline.client.endAsync()
    const pub = await clients.connect(b.url)
    for (let i = 0; i < 5; i++) await pub.client.publishAsync(topic, String(i), { qos: 1 })
    await waitUntil(() => b.broker.stats().limits.maxQueuedPerClient === 2, 'two drops to be counted')
    expect(b.broker.stats().droppedMessages).toBe(2)
  })

  it('a task payload over tasks.maxJsonDepth or the size bound is dead-lettered and counted', async () => {
    const b = await start({ tasks: { includeExamples: true, allowUnknownTypes: true, maxJsonDepth: 8, maxPayloadBytes: 1024 } })
    const dead = await clients.connect(b.url)
    await dead.client.subscribeAsync('$fleetq/dead/+', { qos: 1 })
    const pub = await clients.connect(b.url)
    await pub.client.publishAsync('tasks/anything', '['.repeat(9) + ']'.repeat(9), { qos: 1 })
    // The bound is maxPayloadBytes plus 64 KiB for the envelope around it.
    await pub.client.publishAsync('tasks/anything', JSON.stringify({ blob: 'x'.repeat(70_000) }), { qos: 1 })
    await waitForMessages(dead.messages, 2, 'two dead letters')
    const keywords = dead.messages.map((m) => (JSON.parse(m.payload) as { issues: Array<{ keyword: string }> }).issues[0]?.keyword)
    expect(keywords).toEqual(['maxDepth', 'maxBytes'])
    const limits = b.broker.stats().limits
    expect([limits.maxJsonDepth, limits.maxPayloadBytes]).toEqual([1, 1])
  })
})
