import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import type { BrokerOptions } from '../broker/index.js'
import { Clients, expectNothingFor, waitForMessages, waitUntil, type Message } from './helpers/mqtt-helpers.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'

/*
 * Hostile bytes (docs/security.md#hostile-input): each test sends something a
 * broken or malicious device could, and shows that the offender alone is
 * refused (closed, CONNACK code, SUBACK 0x80 or a dead letter), that it is
 * counted, and that a well-behaved pair connected all along loses nothing.
 */

const brokers: TestBroker[] = []
const clients = new Clients()

afterEach(async () => {
  await clients.closeAll()
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})

interface Setup {
  b: TestBroker
  /** Messages of the well-behaved subscriber on `pairTopic`. */
  pair: Message[]
  /** Publishes one QoS 1 message from the well-behaved publisher. */
  send: (payload: string) => Promise<void>
}

/** A broker with a well-behaved QoS 1 pair already exchanging messages. */
async function setup (options: BrokerOptions = {}): Promise<Setup> {
  const b = await startBroker(options)
  brokers.push(b)
  const pairTopic = uniqueTopic('pair')
  const sub = await clients.connect(b.url, { clientId: `${pairTopic}-sub` })
  await sub.client.subscribeAsync(pairTopic, { qos: 1 })
  const pub = await clients.connect(b.url, { clientId: `${pairTopic}-pub` })
  const send = async (payload: string): Promise<void> => { await pub.client.publishAsync(pairTopic, payload, { qos: 1 }) }
  await send('before')
  await waitForMessages(sub.messages, 1, 'the pair before the attack')
  return { b, pair: sub.messages, send }
}

/** The pair goes on: one more message through, none lost, none duplicated. */
async function pairIntact ({ pair, send }: Setup): Promise<void> {
  await send('after')
  await waitForMessages(pair, 2, 'the pair after the attack')
  expect(pair.map((m) => m.payload)).toEqual(['before', 'after'])
}

interface RawSession {
  socket: Socket
  answers: Packet[]
  write: (bytes: Buffer | Packet) => void
  closed: Promise<void>
}

async function raw (port: number): Promise<RawSession> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => undefined)
  const closed = once(socket, 'close').then(() => undefined)
  await once(socket, 'connect')
  const answers: Packet[] = []
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  parser.on('packet', (packet: Packet) => answers.push(packet))
  parser.on('error', () => undefined)
  socket.on('data', (chunk) => parser.parse(chunk))
  const write = (bytes: Buffer | Packet): void => { socket.write(Buffer.isBuffer(bytes) ? bytes : mqttPacket.generate(bytes)) }
  return { socket, answers, write, closed }
}

function connectPacket (clientId: string, overrides: Record<string, unknown> = {}): Packet {
  return { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 60, ...overrides } as Packet
}

/** A session past CONNACK 0. */
async function connected (port: number): Promise<RawSession> {
  const session = await raw(port)
  session.write(connectPacket(uniqueTopic('raw')))
  await waitUntil(() => session.answers.length > 0, 'CONNACK')
  expect(session.answers[0]).toMatchObject({ cmd: 'connack', returnCode: 0 })
  return session
}

/** A PUBLISH whose topic is the raw bytes `topic` (mqtt-packet would encode a string as valid UTF-8). */
function publishWithTopicBytes (topic: Buffer, payload: string): Buffer {
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, Buffer.from(payload)])
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}

describe('malformed and truncated packets', () => {
  const malformed: Record<string, Buffer> = {
    'reserved packet type 0': Buffer.from([0x00, 0x00]),
    'reserved packet type 15': Buffer.from([0xf0, 0x00]),
    'PUBLISH with QoS 3 [MQTT-3.3.1-4]': Buffer.from([0x36, 0x05, 0x00, 0x01, 0x61, 0x00, 0x01]),
    'SUBSCRIBE with reserved flags 0000 [MQTT-3.8.1-1]': Buffer.from([0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 0x61, 0x01]),
    'a Remaining Length of five bytes [MQTT-2.2.3]': Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f]),
    'a second CONNECT [MQTT-3.1.0-2]': mqttPacket.generate(connectPacket('again')),
    'SUBSCRIBE with no filter [MQTT-3.8.3-3]': Buffer.from([0x82, 0x02, 0x00, 0x01])
  }
  for (const [name, bytes] of Object.entries(malformed)) {
    it(`${name}: that connection is closed and counted; the pair loses nothing`, async () => {
      const s = await setup()
      const session = await connected(s.b.port)
      session.write(bytes)
      await session.closed
      await waitUntil(() => s.b.broker.stats().clientErrors === 1, 'the refusal to be counted', 5_000, () => `clientErrors ${s.b.broker.stats().clientErrors}`)
      await pairIntact(s)
    })
  }

  it('half a CONNECT, then the socket ends: nothing stays registered', async () => {
    const s = await setup()
    const session = await raw(s.b.port)
    const full = mqttPacket.generate(connectPacket(uniqueTopic('half')))
    session.write(full.subarray(0, full.length >> 1))
    session.socket.end()
    await session.closed
    await waitUntil(() => s.b.broker.stats().connectedClients === 2, 'only the pair to be connected')
    await pairIntact(s)
  })

  it('half a PUBLISH, then the socket ends: nothing of it is delivered', async () => {
    const s = await setup()
    const topic = uniqueTopic('torn')
    const watcher = await clients.connect(s.b.url)
    await watcher.client.subscribeAsync(topic, { qos: 1 })
    const session = await connected(s.b.port)
    const full = mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.alloc(100, 1), qos: 1, messageId: 1, retain: false, dup: false })
    session.write(full.subarray(0, 50))
    session.socket.end()
    await session.closed
    await pairIntact(s)
    expect(watcher.messages).toEqual([])
  })
})

describe('CONNECT: protocol names and versions', () => {
  it('a protocol name other than MQTT (or MQIsdp for 3.1) is closed without a CONNACK [MQTT-3.1.2-1]', async () => {
    const s = await setup()
    const session = await raw(s.b.port)
    // "MQTX", level 4: mqtt-packet refuses it before Aedes sees a CONNECT.
    session.write(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x58, 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00]))
    await session.closed
    expect(session.answers).toEqual([])
    await pairIntact(s)
  })

  for (const level of [2, 6, 255]) {
    it(`protocol level ${level} is refused (CONNACK 0x01, unacceptable protocol version, or closed) [MQTT-3.1.2-2]`, async () => {
      const s = await setup()
      const session = await raw(s.b.port)
      session.write(Buffer.from([0x10, 0x0c, 0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, level, 0x02, 0x00, 0x3c, 0x00, 0x00]))
      await session.closed
      expect(session.answers.filter((p) => p.cmd === 'connack' && p.returnCode === 0)).toEqual([])
      for (const answer of session.answers) expect(answer).toMatchObject({ cmd: 'connack', returnCode: 1 })
      await pairIntact(s)
    })
  }

  it('MQTT 5 (level 5) is refused with CONNACK 0x01: the broker speaks 3.1 and 3.1.1', async () => {
    const s = await setup()
    const session = await raw(s.b.port)
    session.write(mqttPacket.generate(connectPacket(uniqueTopic('v5'), { protocolVersion: 5 }), { protocolVersion: 5 }))
    await session.closed
    await pairIntact(s)
    expect(s.b.broker.stats().connectedClients).toBe(2)
  })
})

describe('topics that are not well-formed UTF-8', () => {
  const topics: Record<string, Buffer> = {
    'invalid UTF-8 (a lone continuation byte) [MQTT-1.5.3-1]': Buffer.from([0x61, 0x2f, 0x80, 0x62]),
    'an overlong encoding of "/" [MQTT-1.5.3-1]': Buffer.from([0x61, 0xc0, 0xaf, 0x62]),
    'U+0000 [MQTT-1.5.3-2]': Buffer.from([0x61, 0x00, 0x62])
  }
  for (const [name, topic] of Object.entries(topics)) {
    it(`PUBLISH to ${name}: closed, delivered to no one`, async () => {
      const s = await setup()
      const watcher = await clients.connect(s.b.url)
      await watcher.client.subscribeAsync('#', { qos: 1 })
      const session = await connected(s.b.port)
      session.write(publishWithTopicBytes(topic, 'hostile'))
      await session.closed
      await pairIntact(s)
      expect(watcher.messages.map((m) => m.payload)).toEqual(['before', 'after'].slice(1))
    })
  }

  it('SUBSCRIBE to such a filter gets 0x80; the other filter of the packet is granted', async () => {
    const s = await setup()
    const session = await connected(s.b.port)
    const bad = Buffer.from([0x61, 0x2f, 0xff])
    const good = Buffer.from('fine/#')
    const body = Buffer.concat([Buffer.from([0x00, 0x07]), Buffer.from([0x00, bad.length]), bad, Buffer.from([0x01]), Buffer.from([0x00, good.length]), good, Buffer.from([0x01])])
    session.write(Buffer.concat([Buffer.from([0x82, body.length]), body]))
    await waitUntil(() => session.answers.some((p) => p.cmd === 'suback'), 'SUBACK')
    expect(session.answers.find((p) => p.cmd === 'suback')).toMatchObject({ granted: [128, 1] })
    await pairIntact(s)
  })
})

describe('slow and flooding clients', () => {
  it('slow-loris: a CONNECT sent a byte at a time is cut off at limits.connectTimeoutMs', async () => {
    const s = await setup({ limits: { connectTimeoutMs: 500 } })
    const session = await raw(s.b.port)
    const bytes = mqttPacket.generate(connectPacket(uniqueTopic('loris')))
    const started = Date.now()
    let sent = 0
    const drip = setInterval(() => { if (sent < bytes.length) session.write(bytes.subarray(sent, ++sent)) }, 100)
    try {
      await session.closed
    } finally {
      clearInterval(drip)
    }
    expect(sent).toBeLessThan(bytes.length)
    expect(Date.now() - started).toBeGreaterThanOrEqual(450)
    expect(session.answers).toEqual([])
    expect(s.b.broker.stats().limits.connectTimeoutMs).toBe(1)
    await pairIntact(s)
  })

  it('a CONNECT flood from one address: the rate limit closes the excess, the pair loses nothing', async () => {
    const s = await setup({ limits: { connectsPerSecondPerAddress: 20 } })
    // Each socket sends its CONNECT as soon as it is open; a refused one is
    // reset, maybe before it ever saw 'connect'.
    const sessions = Array.from({ length: 100 }, () => {
      const socket = connect(s.b.port, '127.0.0.1')
      const answers: Packet[] = []
      const parser = mqttPacket.parser({ protocolVersion: 4 })
      parser.on('packet', (packet: Packet) => answers.push(packet))
      socket.on('data', (chunk) => parser.parse(chunk))
      socket.on('error', () => undefined)
      socket.on('connect', () => { socket.write(mqttPacket.generate(connectPacket(uniqueTopic('flood')))) })
      const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()))
      return { socket, answers, ended }
    })
    await Promise.all(sessions.map(async ({ answers, ended }) => { await Promise.race([ended, waitUntil(() => answers.length > 0, 'CONNACK', 10_000)]) }))
    const accepted = sessions.filter((session) => session.answers.some((p) => p.cmd === 'connack' && p.returnCode === 0)).length
    // A burst of twice the rate, less the two connections of the pair, plus what the bucket refilled meanwhile.
    expect(accepted).toBeGreaterThanOrEqual(38)
    expect(accepted).toBeLessThan(100)
    expect(s.b.broker.stats().limits.connectsPerSecondPerAddress).toBe(100 - accepted)
    for (const session of sessions) session.socket.destroy()
    await pairIntact(s)
  })
})

describe('hostile JSON', () => {
  const hostile: Record<string, { payload: Buffer, keyword: string }> = {
    'deep nesting': { payload: Buffer.from('{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000)), keyword: 'maxDepth' },
    'invalid UTF-8': { payload: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]), keyword: 'json' },
    'duplicate keys': { payload: Buffer.from('{"imageUrl":"https://example.com/a.png","imageUrl":1,"width":10,"height":10}'), keyword: 'duplicateKey' },
    'a __proto__ key': { payload: Buffer.from('{"imageUrl":"https://example.com/a.png","width":10,"height":10,"__proto__":{"polluted":true}}'), keyword: 'forbiddenKey' },
    'an escaped __proto__ key': { payload: Buffer.from('{"\\u005f_proto__":{"polluted":true}}'), keyword: 'forbiddenKey' },
    'a huge array': { payload: Buffer.from(JSON.stringify(Array.from({ length: 100_000 }, () => 0))), keyword: 'type' }
  }

  for (const [name, { payload, keyword }] of Object.entries(hostile)) {
    it(`${name} on tasks/thumbnail is dead-lettered with the reason (${keyword}); no prototype is polluted`, async () => {
      const s = await setup()
      const dead = await clients.connect(s.b.url)
      await dead.client.subscribeAsync('$fleetq/dead/thumbnail', { qos: 1 })
      const producer = await clients.connect(s.b.url)
      await producer.client.publishAsync('tasks/thumbnail', payload, { qos: 1 })
      await waitForMessages(dead.messages, 1, 'the dead letter')
      const record = JSON.parse(dead.messages[0]!.payload) as { reason: string, issues: Array<{ keyword: string }> }
      expect(record.reason).toBe('validation')
      expect(record.issues.map((i) => i.keyword)).toContain(keyword)
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
      expect(s.b.broker.stats().hookErrors).toBe(0)
      await pairIntact(s)
    })
  }

  for (const topic of ['$fleetq/share/prefetch', '$fleetq/schedules/request']) {
    it(`every hostile payload on ${topic}, also as a will, is refused with a log line; the broker goes on`, async () => {
      const s = await setup()
      const id = uniqueTopic('hostile-cmd')
      const { client } = await clients.connect(s.b.url, { clientId: id })
      for (const { payload } of Object.values(hostile)) await client.publishAsync(topic, payload, { qos: 1 })
      // And as the will of a client that vanishes (its socket destroyed, so the
      // will is sent); a will message is at most 65,535 bytes [MQTT-1.5.2].
      for (const { payload } of Object.values(hostile).filter((h) => h.payload.length <= 65_535)) {
        const willer = await clients.connect(s.b.url, { clientId: uniqueTopic('willer'), will: { topic, payload, qos: 1, retain: false } })
        ;(willer.client.stream as Socket).destroy()
      }
      await waitUntil(() => s.b.broker.stats().connectedClients === 3, 'the will clients to be gone')
      expect(client.connected).toBe(true)
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
      expect(s.b.broker.stats().hookErrors).toBe(0)
      await pairIntact(s)
    })
  }

  it('a hostile payload on a plain shared group is delivered as it is, not re-encoded (the delivery count goes only into envelopes)', async () => {
    const s = await setup()
    const topic = uniqueTopic('group')
    const member = await clients.connect(s.b.url)
    await member.client.subscribeAsync(`$share/g/${topic}`, { qos: 1 })
    const producer = await clients.connect(s.b.url)
    for (const { payload } of Object.values(hostile)) await producer.client.publishAsync(topic, payload, { qos: 1 })
    const count = Object.keys(hostile).length
    await waitForMessages(member.messages, count, 'every hostile message, delivered')
    await expectNothingFor(200, () => member.messages.length > count, 'a duplicate delivery')
    expect(member.messages.map((m) => Buffer.from(m.payload).length)).toEqual(Object.values(hostile).map(({ payload }) => Buffer.from(payload.toString()).length))
    await pairIntact(s)
  })
})
