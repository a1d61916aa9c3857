import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { ConnectionLimits, type ConnectionLimitSettings } from '../broker/security/connection-limits.js'
import { LimitCounters } from '../broker/security/limit-counters.js'
import type { MqttClient } from 'mqtt'
import WebSocket from 'ws'
import { Clients, waitForEvent, waitUntil, type Message } from './helpers/mqtt-helpers.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { aedesClientOf } from './helpers/aedes-client.js'

/*
 * limits.maxConnections, maxConnectionsPerAddress, connectsPerSecondPerAddress
 * (broker/security/connection-limits.ts) and limits.maxPacketBytes
 * (broker/mqtt/internals/max-packet-size.ts). A refused connection is closed
 * before CONNACK (MQTT 3.1.1 has no return code for a refusal before CONNECT
 * is read); a packet whose fixed header declares more than maxPacketBytes
 * closes its connection before the body is read [MQTT-2.2.3]. Each refusal
 * is counted in stats().limits; every other client goes on as before.
 */

/** How a raw connection ended up: answered with a CONNACK, or closed without one. */
type Outcome = 'connack' | 'closed'

/** A raw TCP connection from `localAddress` (any 127.x address works on loopback) that sends CONNECT. */
async function rawConnect (port: number, clientId: string, localAddress = '127.0.0.1'): Promise<{ socket: Socket, outcome: Outcome }> {
  const socket = connect({ port, host: '127.0.0.1', localAddress })
  socket.setNoDelay(true)
  socket.on('error', () => undefined)
  const outcome = new Promise<Outcome>((resolve) => {
    // CONNACK is the first byte the broker sends: packet type 2 [MQTT-3.2].
    socket.once('data', (chunk: Buffer) => resolve(chunk[0] === 0x20 ? 'connack' : 'closed'))
    socket.once('close', () => resolve('closed'))
  })
  socket.once('connect', () => {
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 0 } as Packet))
  })
  return { socket, outcome: await outcome }
}

describe('connection limits on a real broker', () => {
  let b: TestBroker | undefined
  const clients = new Clients()
  const sockets: Socket[] = []
  const webSockets: WebSocket[] = []
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    for (const ws of webSockets.splice(0)) ws.terminate()
    await clients.closeAll()
    await b?.close()
    b = undefined
  })

  async function raw (clientId: string, localAddress?: string): Promise<Outcome> {
    const { socket, outcome } = await rawConnect(b!.port, clientId, localAddress)
    sockets.push(socket)
    return outcome
  }

  /** A fresh raw connection every few milliseconds until one gets its CONNACK; resolves with how many were refused first. */
  async function retryUntilAdmitted (clientId: string, localAddress?: string): Promise<number> {
    const deadline = Date.now() + 10_000
    let refused = 0
    while (Date.now() < deadline) {
      if (await raw(clientId, localAddress) === 'connack') return refused
      refused++
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    throw new Error(`${clientId} was not admitted within 10 s`)
  }

  /** `pub` sends QoS 1 messages `from`..`from + count - 1` on `topic`; resolves once the subscriber's `messages` hold them all. */
  async function exchange (pub: MqttClient, topic: string, messages: Message[], from: number, count: number): Promise<void> {
    for (let n = from; n < from + count; n++) await pub.publishAsync(topic, String(n), { qos: 1 })
    await waitUntil(() => messages.filter((m) => m.topic === topic).length >= from + count, `${from + count} messages on ${topic}`)
  }

  it('maxConnections: one more connection is closed before CONNACK; open ones go on; a close makes room', async () => {
    b = await startBroker({ limits: { maxConnections: 2 } })
    const topic = uniqueTopic('max-conn')
    const { client: sub, messages } = await clients.connect(b.url, { clientId: `${topic}-sub` })
    await sub.subscribeAsync(topic, { qos: 1 })
    const { client: pub } = await clients.connect(b.url, { clientId: `${topic}-pub` })

    expect(await raw(`${topic}-third`)).toBe('closed')
    expect(await raw(`${topic}-fourth`, '127.0.0.2')).toBe('closed')
    await exchange(pub, topic, messages, 0, 5)
    expect(b.broker.stats().limits.maxConnections).toBe(2)

    await pub.endAsync()
    const refusedMeanwhile = await retryUntilAdmitted(`${topic}-after`)
    expect(b.broker.stats().limits.maxConnections).toBe(2 + refusedMeanwhile)
    await waitUntil(() => b!.broker.stats().connectedClients === 2, 'the subscriber and the client admitted after the close')
  })

  it('maxConnections: a connection whose socket reports closing twice makes room for one connection, not two', async () => {
    b = await startBroker({ limits: { maxConnections: 1 } })
    const topic = uniqueTopic('close-twice')
    await clients.connect(b.url, { clientId: `${topic}-first` })
    // The socket's one 'close' listener calls the connection limits' and Aedes's (broker/mqtt/internals/socket-listeners.ts).
    const conn = aedesClientOf<{ conn: Socket }>(b, `${topic}-first`).conn
    conn.emit('close', false)
    conn.emit('close', false)
    conn.destroy()
    await waitUntil(() => b!.broker.stats().connectedClients === 0, 'the first client gone')
    expect(await retryUntilAdmitted(`${topic}-second`)).toBe(0)
    // Released twice, the count would stand at 0 with one open, and this one would be let in.
    expect(await raw(`${topic}-third`)).toBe('closed')
    expect(b.broker.stats().limits.maxConnections).toBe(1)
  })

  it('maxConnectionsPerAddress: a third connection from 127.0.0.1 is closed, 127.0.0.2 is not affected', async () => {
    b = await startBroker({ limits: { maxConnectionsPerAddress: 2 } })
    const topic = uniqueTopic('per-address')
    const { client: sub, messages } = await clients.connect(b.url, { clientId: `${topic}-sub` })
    await sub.subscribeAsync(topic, { qos: 1 })
    const { client: pub } = await clients.connect(b.url, { clientId: `${topic}-pub` })

    expect(await raw(`${topic}-third`)).toBe('closed')
    expect(await raw(`${topic}-other-1`, '127.0.0.2')).toBe('connack')
    expect(await raw(`${topic}-other-2`, '127.0.0.2')).toBe('connack')
    expect(await raw(`${topic}-other-3`, '127.0.0.2')).toBe('closed')
    await exchange(pub, topic, messages, 0, 5)
    expect(b.broker.stats().limits.maxConnectionsPerAddress).toBe(2)
    expect(b.broker.stats().limits.maxConnections).toBe(0)
  })

  it('connectsPerSecondPerAddress: a burst of twice the rate is accepted, the next is closed, and accepted again once tokens come back', async () => {
    // 2 per second: a burst of 4, then one every 500 ms. Slow enough that
    // the burst below lands before a token comes back, on a loaded machine too.
    b = await startBroker({ limits: { connectsPerSecondPerAddress: 2 } })
    const topic = uniqueTopic('rate')
    const burst = await Promise.all([1, 2, 3, 4, 5].map((n) => raw(`${topic}-${n}`, '127.0.0.3')))
    expect(burst.filter((o) => o === 'connack')).toHaveLength(4)
    expect(burst.filter((o) => o === 'closed')).toHaveLength(1)
    // Another address has its own bucket.
    expect(await raw(`${topic}-elsewhere`, '127.0.0.4')).toBe('connack')

    const refusedMeanwhile = await retryUntilAdmitted(`${topic}-later`, '127.0.0.3')
    expect(b.broker.stats().limits.connectsPerSecondPerAddress).toBe(1 + refusedMeanwhile)
    // The token that came back is spent: the next one is refused again.
    expect(await raw(`${topic}-again`, '127.0.0.3')).toBe('closed')
  })

  it('maxPacketBytes: a fixed header declaring a larger packet closes that connection before its body; other clients lose nothing', async () => {
    b = await startBroker({ limits: { maxPacketBytes: 1024 } })
    const topic = uniqueTopic('max-packet')
    const { client: sub, messages } = await clients.connect(b.url, { clientId: `${topic}-sub` })
    await sub.subscribeAsync(`${topic}/#`, { qos: 1 })
    const { client: pub } = await clients.connect(b.url, { clientId: `${topic}-pub` })
    await exchange(pub, `${topic}/pair`, messages, 0, 5)

    // Exactly at the limit, fixed header included: delivered.
    const { socket: atLimit, outcome } = await rawConnect(b.port, `${topic}-at-limit`)
    sockets.push(atLimit)
    expect(outcome).toBe('connack')
    const fits = publishOfSize(`${topic}/fits`, 1024)
    atLimit.write(fits)
    await waitUntil(() => messages.some((m) => m.topic === `${topic}/fits`), 'the 1024-byte publish')
    expect(b.broker.stats().limits.maxPacketBytes).toBe(0)

    // Only the fixed header of a 256 MB PUBLISH: Remaining Length 268,435,455 [MQTT-2.2.3].
    const { socket: huge, outcome: hugeConnack } = await rawConnect(b.port, `${topic}-huge`)
    sockets.push(huge)
    expect(hugeConnack).toBe('connack')
    const closed = waitForEvent(huge, 'close')
    huge.write(Buffer.from([0x30, 0xff, 0xff, 0xff, 0x7f]))
    await closed
    expect(b.broker.stats().limits.maxPacketBytes).toBe(1)

    // One byte over, sent whole: closed too, and not delivered.
    const { socket: over } = await rawConnect(b.port, `${topic}-over`)
    sockets.push(over)
    const overClosed = waitForEvent(over, 'close')
    over.write(publishOfSize(`${topic}/over`, 1025))
    await overClosed
    expect(b.broker.stats().limits.maxPacketBytes).toBe(2)

    // Before CONNECT too: the offender is then the address.
    const early = connect(b.port, '127.0.0.1')
    sockets.push(early)
    early.on('error', () => undefined)
    await once(early, 'connect')
    const earlyClosed = waitForEvent(early, 'close')
    early.write(Buffer.from([0x10, 0x80, 0x80, 0x80, 0x01])) // CONNECT of 2 MB
    await earlyClosed
    expect(b.broker.stats().limits.maxPacketBytes).toBe(3)

    await exchange(pub, `${topic}/pair`, messages, 5, 5)
    const pair = messages.filter((m) => m.topic === `${topic}/pair`).map((m) => m.payload)
    expect(pair).toEqual(Array.from({ length: 10 }, (_, i) => String(i)))
    expect(messages.some((m) => m.topic === `${topic}/over`)).toBe(false)
  })

  /** The port of the broker's `ws` listener. */
  function wsPort (): number {
    return b!.broker.endpoints.find((e) => e.kind === 'ws')!.port
  }

  /** Milliseconds from TCP connect until the broker closes a raw connection to `port` that does `then` (or nothing). */
  async function timeToClose (port: number, then: (socket: Socket) => void = () => undefined): Promise<number> {
    const socket = connect(port, '127.0.0.1')
    sockets.push(socket)
    socket.on('error', () => undefined)
    await waitForEvent(socket, 'connect')
    const since = Date.now()
    const closed = waitForEvent(socket, 'close')
    then(socket)
    await closed
    return Date.now() - since
  }

  it('WebSocket: a connection that sends no upgrade request, or sends it too slowly, is closed after connectTimeoutMs', async () => {
    b = await startBroker({ ws: { port: 0 }, limits: { connectTimeoutMs: 1000 } })
    const topic = uniqueTopic('ws-slow')
    const { client, messages } = await clients.connect(`ws://127.0.0.1:${wsPort()}/mqtt`)
    await client.subscribeAsync(topic, { qos: 1 })
    const [idle, slow] = await Promise.all([
      timeToClose(wsPort()),
      // One header line every 100 ms: never idle, never done (slow-loris).
      timeToClose(wsPort(), (socket) => {
        socket.write(`GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\n`)
        const drip = setInterval(() => socket.write('X-Drip: 1\r\n'), 100)
        socket.once('close', () => clearInterval(drip))
      })
    ])
    for (const ms of [idle, slow]) {
      expect(ms).toBeGreaterThanOrEqual(900)
      expect(ms).toBeLessThan(5000)
    }
    expect(b.broker.stats().limits.connectTimeoutMs).toBe(2)
    // Open since before both, idle meanwhile: still served.
    await client.publishAsync(topic, 'still here', { qos: 1 })
    await waitUntil(() => messages.length === 1, 'the echo over ws')
  })

  it('WebSocket: a message over maxPacketBytes closes that connection with 1009; other clients lose nothing', async () => {
    b = await startBroker({ ws: { port: 0 }, limits: { maxPacketBytes: 1024 } })
    const url = `ws://127.0.0.1:${wsPort()}/mqtt`
    const topic = uniqueTopic('ws-frame')
    const { client: sub, messages } = await clients.connect(url, { clientId: `${topic}-sub` })
    await sub.subscribeAsync(`${topic}/#`, { qos: 1 })
    const { client: pub } = await clients.connect(url, { clientId: `${topic}-pub` })
    await exchange(pub, `${topic}/pair`, messages, 0, 3)

    const ws = new WebSocket(url, ['mqtt'])
    webSockets.push(ws)
    ws.on('error', () => undefined)
    await waitForEvent(ws, 'open')
    const connack = waitForEvent(ws, 'message')
    ws.send(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: `${topic}-raw`, clean: true, keepalive: 0 } as Packet))
    expect(((await connack)[0] as Buffer)[0]).toBe(0x20)
    // At the limit, in one frame: delivered.
    ws.send(publishOfSize(`${topic}/fits`, 1024))
    await waitUntil(() => messages.some((m) => m.topic === `${topic}/fits`), 'the 1024-byte publish over ws')
    // One byte over: the ws library refuses the frame from its header (close code 1009, Message Too Big).
    const closed = waitForEvent(ws, 'close')
    ws.send(publishOfSize(`${topic}/over`, 1025))
    expect((await closed)[0]).toBe(1009)
    expect(b.broker.stats().limits.maxPacketBytes).toBe(1)

    await exchange(pub, `${topic}/pair`, messages, 3, 3)
    expect(messages.filter((m) => m.topic === `${topic}/pair`).map((m) => m.payload)).toEqual(['0', '1', '2', '3', '4', '5'])
    expect(messages.some((m) => m.topic === `${topic}/over`)).toBe(false)
  })
})

/** A QoS 0 PUBLISH of exactly `total` bytes, fixed header included. */
function publishOfSize (topic: string, total: number): Buffer {
  const generate = (payloadBytes: number): Buffer => mqttPacket.generate({
    cmd: 'publish', topic, payload: Buffer.alloc(payloadBytes, 0x61), qos: 0, retain: false, dup: false
  } as Packet)
  const overhead = generate(0).length
  let packet = generate(total - overhead)
  // The Remaining Length takes one more byte past 127.
  if (packet.length > total) packet = generate(total - overhead - (packet.length - total))
  if (packet.length !== total) throw new Error(`could not build a ${total}-byte PUBLISH (got ${packet.length})`)
  return packet
}

describe('ConnectionLimits with an injected clock', () => {
  const silent = pino({ level: 'silent' })
  const unbounded: ConnectionLimitSettings = { maxConnections: 0, maxConnectionsPerAddress: 0, connectsPerSecondPerAddress: 0 }

  function setUp (settings: Partial<ConnectionLimitSettings>): { limits: ConnectionLimits, counters: LimitCounters, clock: { now: number }, admit: (address: string) => { stream: PassThrough, admitted: boolean } } {
    const counters = new LimitCounters(silent)
    const clock = { now: 1_000_000 }
    const limits = new ConnectionLimits({ ...unbounded, ...settings }, counters, () => clock.now)
    const admit = (address: string): { stream: PassThrough, admitted: boolean } => {
      // As a raw net.Socket: a stream with its remote address.
      const stream = Object.assign(new PassThrough(), { remoteAddress: address })
      const admitted = limits.admitSocket(stream)
      expect(stream.destroyed).toBe(!admitted)
      return { stream, admitted }
    }
    return { limits, counters, clock, admit }
  }

  async function close (stream: PassThrough): Promise<void> {
    const closed = once(stream, 'close')
    stream.destroy()
    await closed
  }

  it('refuses past maxConnections without calling the handler, and makes room when a stream closes', async () => {
    const { limits, counters, admit } = setUp({ maxConnections: 2 })
    const first = admit('10.0.0.1')
    expect(admit('10.0.0.2').admitted).toBe(true)
    expect(first.admitted).toBe(true)
    expect(admit('10.0.0.3').admitted).toBe(false)
    expect(counters.stats().maxConnections).toBe(1)
    expect(limits.stats().open).toBe(2)
    await close(first.stream)
    expect(limits.stats().open).toBe(1)
    expect(admit('10.0.0.3').admitted).toBe(true)
  })

  it('releases a connection exactly once, however many times it reports closing', async () => {
    const { limits, admit } = setUp({ maxConnections: 1 })
    const { stream } = admit('10.0.0.1')
    stream.emit('close')
    stream.emit('close')
    await close(stream)
    expect(limits.stats().open).toBe(0)
    expect(admit('10.0.0.2').admitted).toBe(true)
    // Released twice, the count would be -1 and this would be let in.
    expect(admit('10.0.0.3').admitted).toBe(false)
  })

  it('refuses past maxConnectionsPerAddress, for that address only', async () => {
    const { counters, admit } = setUp({ maxConnectionsPerAddress: 2 })
    const first = admit('10.0.0.1')
    admit('10.0.0.1')
    expect(admit('10.0.0.1').admitted).toBe(false)
    expect(admit('10.0.0.2').admitted).toBe(true)
    expect(counters.stats().maxConnectionsPerAddress).toBe(1)
    await close(first.stream)
    expect(admit('10.0.0.1').admitted).toBe(true)
  })

  it('token bucket: a burst of twice the rate, then one per 1/rate seconds, never more than the burst saved up', () => {
    const { counters, clock, admit } = setUp({ connectsPerSecondPerAddress: 5 })
    for (let i = 0; i < 10; i++) expect(admit('10.0.0.1').admitted, `connection ${i + 1} of the burst`).toBe(true)
    expect(admit('10.0.0.1').admitted).toBe(false)
    expect(admit('10.0.0.2').admitted).toBe(true)
    clock.now += 199
    expect(admit('10.0.0.1').admitted).toBe(false)
    clock.now += 1
    expect(admit('10.0.0.1').admitted).toBe(true)
    expect(admit('10.0.0.1').admitted).toBe(false)
    expect(counters.stats().connectsPerSecondPerAddress).toBe(3)
    // A long quiet spell saves up one burst, not more.
    clock.now += 60_000
    for (let i = 0; i < 10; i++) expect(admit('10.0.0.1').admitted).toBe(true)
    expect(admit('10.0.0.1').admitted).toBe(false)
    // A refusal spends nothing: the next token still comes 200 ms after the last one was taken.
    clock.now += 200
    expect(admit('10.0.0.1').admitted).toBe(true)
  })

  it('keeps no state for a flood of 10,000 addresses once their connections closed and their buckets refilled', async () => {
    const { limits, clock, admit } = setUp({ maxConnectionsPerAddress: 10, connectsPerSecondPerAddress: 200 })
    const streams: PassThrough[] = []
    for (let i = 0; i < 10_000; i++) {
      const { stream, admitted } = admit(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`)
      expect(admitted).toBe(true)
      streams.push(stream)
    }
    expect(limits.stats()).toEqual({ open: 10_000, addresses: 10_000 })
    await Promise.all(streams.map((s) => close(s)))
    expect(limits.stats().open).toBe(0)
    // Each bucket is one token short for 5 ms; after the refill period the next arrival sweeps them all.
    clock.now += 2_000
    expect(admit('192.0.2.1').admitted).toBe(true)
    expect(limits.stats()).toEqual({ open: 1, addresses: 1 })
  })

  it('without a rate, an address is forgotten as soon as its last connection closes; refusals for capacity keep nothing', async () => {
    const { limits, admit } = setUp({ maxConnections: 100 })
    const streams = Array.from({ length: 100 }, (_, i) => admit(`10.0.1.${i}`).stream)
    for (let i = 0; i < 1000; i++) expect(admit(`10.0.2.${i}`).admitted).toBe(false)
    expect(limits.stats()).toEqual({ open: 100, addresses: 100 })
    await Promise.all(streams.map((s) => close(s)))
    expect(limits.stats()).toEqual({ open: 0, addresses: 0 })
  })

  it('refuses nonsense settings at construction', () => {
    expect(() => new ConnectionLimits({ ...unbounded, maxConnections: -1 }, new LimitCounters(silent))).toThrow(/limits.maxConnections/)
  })
})
