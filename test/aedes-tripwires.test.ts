import type { Client } from 'aedes'
import type { IPublishPacket, Packet } from 'mqtt'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { connect, Socket } from 'node:net'
import { Writable } from 'node:stream'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { createBroker } from '../broker/index.js'
import { allowAll, type AccessPolicy } from '../broker/mqtt/index.js'
import { keepaliveSecondsOf } from '../broker/mqtt/internals/keepalive.js'
import { deferred } from './helpers/deferred.js'
import { Clients, expectNothingFor, waitForMessages, waitUntil } from './helpers/mqtt-helpers.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { aedesClientOf } from './helpers/aedes-client.js'

/*
 * Tripwires for what broker/mqtt/ relies on inside Aedes 1.2 (pinned
 * "~1.2.0" in package.json; docs/mqtt-adapter.md lists each patch). Each
 * test fails loudly, naming the patch, if an Aedes upgrade moves what a patch
 * reads or replaces. Real broker, real mqtt.js clients, nothing mocked.
 */

interface AedesInternals {
  clients: Record<string, Client & {
    _nextId: unknown
    deliver0: unknown
    deliverQoS: unknown
    subscriptions: Record<string, { qos: number }>
  }>
  mq: { emit: (packet: { topic: string, brokerId?: string, brokerCounter?: number }, cb?: (err?: Error) => void) => void }
  persistence: Record<string, (...args: unknown[]) => unknown>
  version: string
}

describe('Aedes tripwires (broker/mqtt/internals)', () => {
  let b: TestBroker | undefined
  const clients = new Clients()
  afterEach(async () => {
    await clients.closeAll()
    await b?.close()
    b = undefined
  })

  const internals = (): AedesInternals => b!.broker.aedes as unknown as AedesInternals
  const aedesClient = (id: string): AedesInternals['clients'][string] => aedesClientOf<AedesInternals['clients'][string]>(b, id)

  it('runs the Aedes version the patches were checked against (package.json pins ~1.2.0)', async () => {
    b = await startBroker()
    // aedes's exports map hides package.json: read it next to its entry point.
    const entry = createRequire(import.meta.url).resolve('aedes')
    const installed = (JSON.parse(await readFile(join(dirname(entry), 'package.json'), 'utf8')) as { version: string }).version
    expect(installed, 'aedes was upgraded: re-check every patch in broker/mqtt/internals/ and docs/mqtt-adapter.md').toMatch(/^1\.2\./)
    expect(internals().version).toBe(installed)
  })

  it('packet ids: client._nextId is the counter Aedes takes a QoS 1 delivery id from (internals/packet-ids.ts)', async () => {
    b = await startBroker()
    const topic = uniqueTopic('tw-ids')
    const { client: sub } = await clients.connect(b.url, { clientId: `${topic}-sub` })
    await sub.subscribeAsync(`${topic}/x`, { qos: 1 })
    const internal = aedesClient(`${topic}-sub`)
    expect(typeof internal._nextId, 'Aedes client._nextId is gone: group deliveries would reuse packet ids').toBe('number')
    const before = internal._nextId as number
    const ids: number[] = []
    sub.on('message', (_t, _p, packet: IPublishPacket) => { if (packet.messageId !== undefined) ids.push(packet.messageId) })
    await b.broker.publish({ topic: `${topic}/x`, payload: Buffer.from('1'), qos: 1 })
    await waitUntil(() => ids.length === 1, 'the QoS 1 delivery')
    expect(ids[0], 'Aedes no longer takes the packet id from client._nextId (lib/qos-packet.js)').toBe(before)
    expect(internal._nextId).toBe(before >= 65535 ? 1 : before + 1)
  })

  it('connection state and socket: connected, closed and conn are what lib/write.js uses (internals/packet-ids.ts)', async () => {
    b = await startBroker()
    const id = uniqueTopic('tw-conn')
    const { client } = await clients.connect(b.url, { clientId: id })
    const internal = aedesClient(id)
    expect(internal.connected).toBe(true)
    expect(internal.closed).toBe(false)
    expect(typeof internal.conn.write).toBe('function')
    await client.endAsync()
    await waitUntil(() => internal.closed && !internal.connected, 'Aedes to mark the client closed')
  })

  it('keep-alive: client._keepaliveInterval is keepalive × 1500 + 1 ms, -1 for none (internals/keepalive.ts, read by the admin API)', async () => {
    b = await startBroker()
    const id = uniqueTopic('tw-keepalive')
    await clients.connect(b.url, { clientId: id, keepalive: 42 })
    expect(keepaliveSecondsOf(aedesClient(id))).toBe(42)
    expect((aedesClient(id) as unknown as { _keepaliveInterval: number })._keepaliveInterval).toBe(42 * 1500 + 1)
    const none = uniqueTopic('tw-keepalive-0')
    await clients.connect(b.url, { clientId: none, keepalive: 0 })
    expect(keepaliveSecondsOf(aedesClient(none))).toBe(0)
  })

  it('deliver0: a per-client function property that the QoS 0 path of a subscription calls (internals/overlapping-subscriptions.ts)', async () => {
    b = await startBroker()
    const topic = uniqueTopic('tw-deliver0')
    const { client: sub, messages } = await clients.connect(b.url, { clientId: `${topic}-sub` })
    const internal = aedesClient(`${topic}-sub`)
    expect(Object.hasOwn(internal, 'deliver0'), 'Aedes client.deliver0 is no longer an own property: the QoS 0 overlap fix cannot replace it').toBe(true)
    expect(Object.hasOwn(internal, 'deliverQoS')).toBe(true)
    // Our patch (an anonymous arrow, see overlapping-subscriptions.ts) replaces Aedes's deliverQoS0 on every connection before it subscribes.
    expect((internal.deliver0 as { name: string }).name, 'Aedes renamed deliver0: check the tripwire still tells ours from Aedes\'s').not.toBe('deliverQoS0')
    expect((internal.deliver0 as { name: string }).name, 'the QoS 0 overlap fix is not installed on each connection').toBe('bound deliverAtHighestQos')
    const patched = internal.deliver0 as (packet: unknown, cb: () => void) => void
    const calls: string[] = []
    internal.deliver0 = function (packet: { topic: string }, cb: () => void) {
      calls.push(packet.topic)
      patched(packet, cb)
    }
    await sub.subscribeAsync(`${topic}/q0`, { qos: 0 })
    await b.broker.publish({ topic: `${topic}/q0`, payload: Buffer.from('a'), qos: 0 })
    await waitForMessages(messages, 1, 'QoS 0 message')
    expect(calls, 'a QoS 0 delivery no longer goes through client.deliver0').toEqual([`${topic}/q0`])
  })

  it('client.subscriptions: a plain object keyed by filter, written by assignment, restored before clientReady (internals/subscriptions.ts)', async () => {
    b = await startBroker()
    const topic = uniqueTopic('tw-subs')
    const id = `${topic}-sub`
    const { client } = await clients.connect(b.url, { clientId: id, clean: false })
    await client.subscribeAsync([`${topic}/#`, `${topic}/a`, `$share/g/${topic}/s`], { qos: 1 })
    await client.subscribeAsync(`${topic}/a`, { qos: 0 })
    const subs = aedesClient(id).subscriptions
    expect(Object.getPrototypeOf(subs), 'client.subscriptions is no longer a plain (null-prototype) object').toBe(null)
    expect(Object.keys(subs).sort()).toEqual([`$share/g/${topic}/s`, `${topic}/#`, `${topic}/a`].sort())
    expect(subs[`${topic}/#`]?.qos).toBe(1)
    // The overlap fix's set trap ran: the exact-topic filter (granted 0)
    // reports the highest QoS of the client's filters matching it.
    expect(subs[`${topic}/a`]?.qos, 'Aedes no longer assigns into client.subscriptions: the overlap fix does not see new subscriptions').toBe(1)
    await client.endAsync()

    // A persistent session's subscriptions are restored before 'clientReady' (groups join there).
    const seen = deferred<string[]>()
    const onReady = (c: Client): void => {
      if (c.id === id) seen.resolve(Object.keys((c as unknown as { subscriptions: object }).subscriptions).sort())
    }
    b.broker.aedes.on('clientReady', onReady)
    try {
      await clients.connect(b.url, { clientId: id, clean: false })
      expect(await seen.promise).toContain(`$share/g/${topic}/s`)
    } finally {
      b.broker.aedes.off('clientReady', onReady)
    }
  })

  it('mq.emit: Aedes routes every publish through broker.mq.emit, with brokerId and a numeric brokerCounter (internals/emit-order.ts)', async () => {
    b = await startBroker()
    const topic = uniqueTopic('tw-emit')
    const mq = internals().mq
    expect(Object.hasOwn(mq, 'emit'), 'EmitOrder no longer replaces mq.emit').toBe(true)
    const wrapped = mq.emit
    const seen: Array<{ brokerId?: string, brokerCounter?: number }> = []
    mq.emit = (packet, cb) => {
      if (packet.topic === topic) seen.push({ brokerId: packet.brokerId, brokerCounter: packet.brokerCounter })
      wrapped(packet, cb)
    }
    try {
      const { client } = await clients.connect(b.url, { clientId: `${topic}-pub` })
      await client.publishAsync(topic, 'x', { qos: 1 })
      await waitUntil(() => seen.length === 1, 'the publish to reach mq.emit')
      expect(seen[0]?.brokerId).toBe(b.broker.aedes.id)
      expect(typeof seen[0]?.brokerCounter, 'aedes-packet no longer numbers packets (brokerCounter): the moscajs/aedes#994 fix has nothing to renumber').toBe('number')
    } finally {
      mq.emit = wrapped
    }
  })

  it('authorizePublish runs before the PUBACK is written (hooks/authorize-publish.ts: the journal write must precede it)', async () => {
    const held = deferred<boolean>()
    const called = deferred()
    const topic = uniqueTopic('tw-puback')
    b = await startBrokerWithAccess({
      authorizePublish: (_client, t) => {
        if (t !== `${topic}/held`) return true
        called.resolve()
        return held.promise
      }
    })
    const { client, messages } = await clients.connect(b.url, { clientId: `${topic}-pub` })
    await client.subscribeAsync(`${topic}/probe`, { qos: 0 })
    const pubacks: number[] = []
    client.on('packetreceive', (packet: Packet) => { if (packet.cmd === 'puback') pubacks.push(packet.messageId ?? -1) })
    const acked = client.publishAsync(`${topic}/held`, 'x', { qos: 1 })
    await called.promise
    // A broker write to the same socket after the hook was called: a PUBACK
    // Aedes had written first would arrive before it (TCP keeps order).
    await b.broker.publish({ topic: `${topic}/probe`, payload: Buffer.from('after'), qos: 0 })
    await waitForMessages(messages, 1, 'probe message')
    expect(pubacks, 'Aedes wrote the PUBACK before authorizePublish answered').toEqual([])
    held.resolve(true)
    await acked
    expect(pubacks).toHaveLength(1)
  })

  it('authorizeForward: its returned packet is what Aedes writes (hooks/authorize-forward.ts: QoS downgrade)', async () => {
    b = await startBroker()
    const topic = uniqueTopic('tw-forward')
    const { client: sub, messages } = await clients.connect(b.url, { clientId: `${topic}-sub` })
    await sub.subscribeAsync(`${topic}/#`, { qos: 0 })
    const { client: pub } = await clients.connect(b.url, { clientId: `${topic}-pub` })
    await pub.publishAsync(`${topic}/x`, 'x', { qos: 1 })
    await waitForMessages(messages, 1, 'forwarded message')
    expect(messages[0]?.qos, 'Aedes ignores the packet authorizeForward returns').toBe(0)
  })

  it('PUBACK path: Aedes hands every PUBACK to persistence.outgoingClearMessageId (the ack interceptor the groups claim theirs in)', async () => {
    b = await startBroker()
    const topic = uniqueTopic('tw-ack')
    const persistence = internals().persistence
    const original = persistence['outgoingClearMessageId'] as (client: { id: string }, packet: { messageId?: number }) => Promise<unknown>
    expect(typeof original).toBe('function')
    const cleared: number[] = []
    persistence['outgoingClearMessageId'] = function (this: unknown, client: { id: string }, packet: { messageId?: number }) {
      if (client.id === `${topic}-sub` && packet.messageId !== undefined) cleared.push(packet.messageId)
      return original.call(this, client, packet)
    } as (...args: unknown[]) => unknown
    try {
      const { client: sub, messages } = await clients.connect(b.url, { clientId: `${topic}-sub` })
      await sub.subscribeAsync(topic, { qos: 1 })
      const ids: number[] = []
      sub.on('message', (_t, _p, packet: IPublishPacket) => { ids.push(packet.messageId ?? -1) })
      await b.broker.publish({ topic, payload: Buffer.from('x'), qos: 1 })
      await waitForMessages(messages, 1, 'QoS 1 message')
      await waitUntil(() => cleared.length === 1, 'the PUBACK to reach outgoingClearMessageId')
      expect(cleared).toEqual(ids)
    } finally {
      persistence['outgoingClearMessageId'] = original as (...args: unknown[]) => unknown
    }
  })

  it("SUBACK and 'subscribe' events: 128 for a refused filter, else the QoS asked for, not the one authorizeSubscribe returned", async () => {
    b = await startBroker()
    const topic = uniqueTopic('tw-granted')
    const events = deferred<Array<{ topic: string, qos: number }>>()
    const onSubscribe = (subs: Array<{ topic: string, qos: number }>, client: Client): void => {
      if (client.id === `${topic}-sub`) events.resolve(subs.map((s) => ({ topic: s.topic, qos: s.qos })))
    }
    b.broker.aedes.on('subscribe', onSubscribe)
    try {
      const { client } = await clients.connect(b.url, { clientId: `${topic}-sub` })
      const suback = deferred<number[]>()
      client.on('packetreceive', (packet: Packet) => { if (packet.cmd === 'suback') suback.resolve(packet.granted as number[]) })
      // Not subscribeAsync: mqtt.js rejects a SUBACK with a 0x80 in it.
      client.subscribe([`$delayed/5/${topic}`, `$share/g/${topic}`], { qos: 2 }, () => undefined)
      // The adapter joins groups only for filters not refused (qos !== 128).
      // Aedes 1.2 grants what was asked (lib/handlers/subscribe.js SubState):
      // the $share/ subscription it keeps is QoS 1 (groups deliver at most
      // QoS 1), yet the SUBACK says 2. If this changes, so does what clients see.
      expect(await events.promise).toEqual([{ topic: `$delayed/5/${topic}`, qos: 128 }, { topic: `$share/g/${topic}`, qos: 2 }])
      expect(await suback.promise).toEqual([128, 2])
    } finally {
      b.broker.aedes.off('subscribe', onSubscribe)
    }
  })

  it('stores only granted filters: Aedes hands persistence.addSubscriptions the same objects authorizeSubscribe saw, refused ones included (internals/granted-subscriptions.ts)', async () => {
    const seen: { authorized: object[], stored: object[][] } = { authorized: [], stored: [] }
    const topic = uniqueTopic('tw-store')
    b = await startBrokerWithAccess({ authorizeSubscribe: (_client, filter) => !filter.endsWith('/refused') })
    const persistence = (b.broker.aedes as unknown as { persistence: StoreProbe }).persistence
    const patched = persistence.addSubscriptions
    persistence.addSubscriptions = async (client, subs) => {
      seen.stored.push(subs)
      await patched.call(persistence, client, subs)
    }
    const authorize = b.broker.aedes.authorizeSubscribe
    b.broker.aedes.authorizeSubscribe = (client, sub, callback) => {
      seen.authorized.push(sub)
      authorize.call(b!.broker.aedes, client, sub, callback)
    }
    const { client } = await clients.connect(b.url, { clientId: `${topic}-sub`, clean: false })
    const suback = deferred<number[]>()
    client.on('packetreceive', (packet: Packet) => { if (packet.cmd === 'suback') suback.resolve(packet.granted as number[]) })
    client.subscribe([`${topic}/granted`, `${topic}/refused`], { qos: 1 }, () => undefined)
    expect(await suback.promise).toEqual([1, 128])
    // Aedes stores the whole packet's list, once per granted filter, with the very objects the hook saw.
    expect(seen.stored.length, 'Aedes no longer stores through persistence.addSubscriptions').toBeGreaterThan(0)
    for (const stored of seen.stored) {
      expect(stored.length, 'Aedes now stores filters one by one: the granted-subscriptions patch may be unneeded').toBe(2)
      for (const sub of stored) expect(seen.authorized, 'the stored subscription objects are not those authorizeSubscribe got').toContain(sub)
    }
    // And the patch keeps the refused one out of the store.
    const kept = await persistence.subscriptionsByClient({ id: `${topic}-sub` })
    expect(kept.map((s) => s.topic)).toEqual([`${topic}/granted`])
  })

  it('pause and resume: client.pause() stops the reads of lib/client.js nextBatch, client.resume() reads again (internals/reading.ts)', async () => {
    b = await startBroker()
    const topic = uniqueTopic('tw-pause')
    const sub = await clients.connect(b.url)
    await sub.client.subscribeAsync(topic, { qos: 0 })
    const pub = await clients.connect(b.url, { clientId: `${topic}-pub` })
    const publisher = aedesClient(`${topic}-pub`) as unknown as { pause?: () => void, resume?: () => void, _paused?: boolean }
    expect(typeof publisher.pause, 'Aedes client.pause() is gone: the publish rate limit cannot throttle').toBe('function')
    expect(typeof publisher.resume, 'Aedes client.resume() is gone').toBe('function')
    publisher.pause!()
    expect(publisher._paused).toBe(true)
    pub.client.publish(topic, 'held back', { qos: 0 })
    await expectNothingFor(300, () => sub.messages.length > 0, 'a message read from a paused client')
    publisher.resume!()
    await waitForMessages(sub.messages, 1, 'the message once the client is resumed')
  })

  it('max packet size: client._parser decodes the Remaining Length in _parseLength before the body, and its errors close the connection (internals/max-packet-size.ts)', async () => {
    b = await startBroker()
    const id = uniqueTopic('tw-parser')
    const socket = connect(b.port, '127.0.0.1')
    socket.on('error', () => undefined)
    await once(socket, 'connect')
    const connack = once(socket, 'data')
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: id, clean: true, keepalive: 0 } as Parameters<typeof mqttPacket.generate>[0]))
    await connack
    const parser = (aedesClient(id) as unknown as { _parser?: ParserProbe })._parser
    expect(typeof parser?._parseLength, 'Aedes client._parser._parseLength is gone: maxPacketBytes cannot see the Remaining Length before the body').toBe('function')
    expect(typeof parser?._emitError, 'Aedes client._parser._emitError is gone').toBe('function')
    if (parser === undefined) return
    expect(parser._parseLength.name, 'the max packet size patch is not installed on each connection').toBe('parseLengthWithin')
    const patched = parser._parseLength
    const seen: Array<{ length: number, consumed: number }> = []
    parser._parseLength = function (this: ParserProbe) {
      const buffered = this._list.length
      const done = patched.call(this)
      if (done) seen.push({ length: this.packet.length, consumed: buffered - this._list.length })
      return done
    }
    // Only the fixed header of a PUBLISH with a Remaining Length of 300 (two length bytes) [MQTT-2.2.3].
    socket.write(Buffer.from([0x30, 0xac, 0x02]))
    await waitUntil(() => seen.length === 1, '_parseLength to decode the Remaining Length before the body')
    expect(seen, 'after _parseLength, packet.length is no longer the Remaining Length, or _list no longer loses the length bytes').toEqual([{ length: 300, consumed: 2 }])
    // The patch refuses as mqtt-packet does a malformed packet: Aedes closes the connection on the parser's 'error'.
    const closed = once(socket, 'close')
    parser._emitError(new Error('tripwire'))
    await closed
    await waitUntil(() => internals().clients[id] === undefined, 'Aedes to drop the client after a parser error')
  })

  it('coalesced writes: mqtt-packet corks the stream once per packet and uncorks it on the next tick; deliveries of one turn leave in one write (internals/coalesced-writes.ts)', async () => {
    // What the patch relies on, on a bare stream: writeToStream's own cork, undone on the next tick.
    const calls: string[] = []
    const stream = new Writable({ write (_chunk, _enc, done) { calls.push('write'); done() }, writev (_chunks, done) { calls.push('writev'); done() } })
    const cork = stream.cork.bind(stream)
    const uncork = stream.uncork.bind(stream)
    stream.cork = () => { calls.push('cork'); cork() }
    stream.uncork = () => { calls.push('uncork'); uncork() }
    mqttPacket.writeToStream({ cmd: 'puback', messageId: 1 }, stream)
    expect(calls, 'mqtt-packet writeToStream no longer corks the stream per packet: internals/coalesced-writes.ts holds nothing back').toEqual(['cork'])
    await new Promise<void>((resolve) => process.nextTick(resolve))
    expect(calls.slice(0, 2), 'mqtt-packet no longer uncorks on the next tick').toEqual(['cork', 'uncork'])

    // On a real connection: ten QoS 0 deliveries, which Aedes schedules one setImmediate each, reach the socket in one write.
    b = await startBroker()
    const topic = uniqueTopic('tw-cork')
    const sub = await clients.connect(b.url, { clientId: `${topic}-sub` })
    await sub.client.subscribeAsync(topic, { qos: 0 })
    const conn = aedesClient(`${topic}-sub`).conn as unknown as { _write: (...args: unknown[]) => void, _writev?: (...args: unknown[]) => void }
    let writes = 0
    const write = conn._write.bind(conn)
    conn._write = (...args: unknown[]) => { writes++; write(...args) }
    const writev = conn._writev?.bind(conn)
    if (writev !== undefined) conn._writev = (...args: unknown[]) => { writes++; writev(...args) }
    const raw = connect(b.port, '127.0.0.1')
    raw.on('error', () => undefined)
    await once(raw, 'connect')
    const connack = once(raw, 'data')
    raw.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: `${topic}-pub`, clean: true, keepalive: 0 } as Parameters<typeof mqttPacket.generate>[0]))
    await connack
    const burst = Array.from({ length: 10 }, (_, i) => mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.from(String(i)), qos: 0, dup: false, retain: false }))
    raw.write(Buffer.concat(burst)) // one read on the broker's side: one turn
    await waitForMessages(sub.messages, 10, 'the ten deliveries')
    raw.destroy()
    expect(writes, 'the ten deliveries of one turn took one socket write each: is coalesceWrites still applied in MqttAdapter.handle?').toBeLessThanOrEqual(2)
  })

  it('number cache: Aedes writes with the mqtt-packet we set cacheNumbers on, and packet identifiers still go out right (internals/number-cache.ts)', async () => {
    b = await startBroker()
    const fromAedes = createRequire(createRequire(import.meta.url).resolve('aedes')).resolve('mqtt-packet')
    expect(fromAedes, 'Aedes has its own copy of mqtt-packet: skipNumberCache no longer reaches its writes').toBe(createRequire(import.meta.url).resolve('mqtt-packet'))
    expect((mqttPacket.writeToStream as unknown as { cacheNumbers: boolean }).cacheNumbers).toBe(false)
    const topic = uniqueTopic('numbers')
    const sub = await clients.connect(b.url, { clientId: `${topic}-sub` })
    const ids: Array<number | undefined> = []
    sub.client.on('packetreceive', (packet: Packet) => { if (packet.cmd === 'publish') ids.push(packet.messageId) })
    await sub.client.subscribeAsync(topic, { qos: 1 })
    const pub = await clients.connect(b.url, { clientId: `${topic}-pub` })
    for (let i = 0; i < 3; i++) await pub.client.publishAsync(topic, String(i), { qos: 1 })
    await waitForMessages(sub.messages, 3, 'three QoS 1 deliveries')
    expect(sub.messages.map((m) => m.payload)).toEqual(['0', '1', '2'])
    expect(new Set(ids).size, 'each QoS 1 delivery carries its own packet identifier').toBe(3)
    expect(ids.every((id) => typeof id === 'number' && id > 0)).toBe(true)
  })
})


describe('Aedes tripwires: what an idle connection is made of (internals/lean-client.ts and the files it applies)', () => {
  let b: TestBroker | undefined
  const clients = new Clients()
  afterEach(async () => {
    await clients.closeAll()
    await b?.close()
    b = undefined
  })

  /** A client as Aedes's own constructor leaves it, before the adapter's patches: aedes.handle on a socket not connected to anything. */
  const bareClient = (): { client: BareClient, socket: Socket } => {
    const socket = new Socket()
    const client = (b!.broker.aedes as unknown as { handle: (conn: Socket) => BareClient }).handle(socket)
    return { client, socket }
  }
  const names = (emitter: { rawListeners: (event: string) => unknown[] }, event: string): string[] => emitter.rawListeners(event).map((f) => (f as { name: string }).name)

  it('socket listeners: Aedes listens with bound functions and finished(), close() calls _eos (internals/socket-listeners.ts)', async () => {
    b = await startBroker()
    const { client, socket } = bareClient()
    try {
      expect(names(socket, 'error'), "Aedes's 'error' listener on the socket moved: socket-listeners.ts removes the wrong one").toEqual(['bound emit', 'onerror'])
      expect(names(socket, 'end').slice(-2), "Aedes's 'end' listener on the socket moved").toEqual(['bound close', 'onend'])
      expect(names(socket, 'close'), "finished()'s 'close' listener moved").toContain('onclose')
      expect(names(client._parser, 'error'), "Aedes's parser 'error' listener moved").toEqual(['bound emit'])
      const clientSource = await readFile(join(dirname(createRequire(import.meta.url).resolve('aedes')), 'lib', 'client.js'), 'utf8')
      expect(clientSource, "Client.close no longer calls _eos: finished()'s listeners would have stayed on a closed socket").toMatch(/close \(done\) \{[\s\S]*this\._eos\(\)\s*this\._eos = noop/)
    } finally {
      client.close()
    }
    // On the adapter's connections: the shared listeners, and a socket closed from
    // the broker's side without an error still closes the Aedes client.
    const id = uniqueTopic('tw-listeners')
    await clients.connect(b.url, { clientId: id })
    const internal = (b.broker.aedes as unknown as { clients: Record<string, BareClient | undefined> }).clients[id] as BareClient
    const conn = internal.conn as Socket
    expect(names(conn, 'error')).toEqual(['emitOnClient'])
    expect(names(conn, 'end')).toEqual(['endThenCloseClient'])
    expect(names(conn, 'close')).toEqual(['closeThenCloseClient'])
    expect(names(internal._parser, 'error')).toEqual(['emitOnClient'])
    conn.destroy()
    await waitUntil(() => (b!.broker.aedes as unknown as { clients: Record<string, unknown> }).clients[id] === undefined, 'Aedes to drop a client whose socket was destroyed')
  })

  it('lean parser: mqtt-packet keeps the CONNECT as parser.settings and reads only protocolVersion and bridgeMode from it (internals/lean-parser.ts)', async () => {
    b = await startBroker()
    const { client } = bareClient()
    client.close()
    expect(client._parser._states, 'mqtt-packet parse steps changed').toEqual(['_parseHeader', '_parseLength', '_parsePayload', '_newPacket'])
    // A parser of nobody's (no `client`) is left as mqtt-packet made it.
    const parser = mqttPacket.parser() as unknown as { settings: unknown, on: (event: string, f: (p: unknown) => void) => void, parse: (b: Buffer) => void }
    let parsed: unknown
    parser.on('packet', (p) => { parsed = p })
    parser.parse(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'x', clean: true, keepalive: 0 } as Parameters<typeof mqttPacket.generate>[0]))
    expect(parser.settings, 'mqtt-packet no longer keeps the CONNECT as parser.settings').toBe(parsed)
    const source = String((mqttPacket.parser() as unknown as Record<string, unknown>)._parsePayload) + String(Object.getPrototypeOf(mqttPacket.parser()).constructor)
    expect(source.match(/settings\.\w+/g)?.sort().filter((v, i, a) => a.indexOf(v) === i), 'mqtt-packet reads more of parser.settings than lean-parser.ts keeps').toEqual(['settings.bridgeMode', 'settings.protocolVersion'])
    // On the adapter's connections: the shared settings, and 3.1 and 3.1.1 clients still parse.
    for (const protocolVersion of [3, 4] as const) {
      const topic = uniqueTopic(`tw-parser-${protocolVersion}`)
      // MQTT 3.1 allows client ids of 23 characters at most.
      const clientId = `p${protocolVersion}-${Math.random().toString(36).slice(2, 12)}`
      const { client: sub, messages } = await clients.connect(b.url, { clientId, protocolVersion, ...(protocolVersion === 3 ? { protocolId: 'MQIsdp' } : {}) })
      const settings = (b.broker.aedes as unknown as { clients: Record<string, BareClient> }).clients[clientId]?._parser.settings
      expect(settings).toEqual({ protocolVersion, bridgeMode: false })
      expect(Object.isFrozen(settings)).toBe(true)
      await sub.subscribeAsync(topic, { qos: 1 })
      await b.broker.publish({ topic, payload: Buffer.from('v'), qos: 1 })
      await waitForMessages(messages, 1, `a delivery to an MQTT level ${protocolVersion} client`)
    }
  })

  it('keep-alive wheel: setKeepAlive arms a Timeout before the CONNACK, refreshed per packet and cleared by close (internals/keepalive-wheel.ts)', async () => {
    b = await startBroker()
    // Registered before the broker's first connection: it runs before the wheel's own listener.
    const armed: unknown[] = []
    b.broker.aedes.on('connackSent', (_packet: unknown, c: Client) => { armed.push((c as unknown as BareClient)._keepaliveTimer) })
    const id = uniqueTopic('tw-wheel')
    const { client } = await clients.connect(b.url, { clientId: id, keepalive: 30 })
    expect(armed[0]?.constructor.name, 'Aedes no longer arms a Timeout for the keep-alive in setKeepAlive').toBe('Timeout')
    const connectSource = (await readFile(join(dirname(createRequire(import.meta.url).resolve('aedes')), 'lib', 'handlers', 'connect.js'), 'utf8'))
    expect(connectSource, 'setKeepAlive no longer runs before doConnack, or no longer emits what the wheel does on expiry').toMatch(/setKeepAlive,[\s\S]*doConnack,[\s\S]*client\.broker\.emit\('keepaliveTimeout', client\)\s*client\.emit\('error', new Error\('keep alive timeout'\)\)/)
    const handlersSource = await readFile(join(dirname(createRequire(import.meta.url).resolve('aedes')), 'lib', 'handlers', 'index.js'), 'utf8')
    expect(handlersSource, 'Aedes no longer refreshes the keep-alive with _keepaliveTimer.refresh() after each packet').toContain('client._keepaliveTimer.refresh()')
    const internal = (b.broker.aedes as unknown as { clients: Record<string, BareClient> }).clients[id] as BareClient
    const entry = internal._keepaliveTimer as { client: unknown, last: number }
    expect(entry.constructor.name, 'the keep-alive did not move to the wheel').toBe('KeepaliveEntry')
    const before = entry.last
    await new Promise<void>((resolve) => { (client as unknown as { _sendPacket: (p: object, cb: () => void) => void })._sendPacket({ cmd: 'pingreq' }, resolve) })
    await waitUntil(() => entry.last > before, 'a PINGREQ to refresh the wheel entry')
    await client.endAsync()
    await waitUntil(() => entry.client === null, 'close() to take the client off the wheel')
  })
})

/** An Aedes client as these tripwires read it. */
interface BareClient {
  conn: unknown
  close: (done?: () => void) => void
  _keepaliveTimer: unknown
  _parser: { _states: unknown, settings: unknown, rawListeners: (event: string) => unknown[] }
}

/** What internals/granted-subscriptions.ts wraps on the persistence Aedes is given. */
interface StoreProbe {
  addSubscriptions: (client: unknown, subs: object[]) => Promise<void>
  subscriptionsByClient: (client: { id: string }) => Promise<Array<{ topic: string }>>
}

/** What internals/max-packet-size.ts reads and replaces on `client._parser` (mqtt-packet's Parser). */
interface ParserProbe {
  _parseLength: (this: ParserProbe) => boolean
  _emitError: (err: Error) => void
  _list: { length: number }
  packet: { length: number }
}

/** startBroker(), with an access policy (createBroker's internal second argument). */
async function startBrokerWithAccess (access: Partial<AccessPolicy>): Promise<TestBroker> {
  const dataDir = await mkdtemp(join(tmpdir(), 'fleetq-tripwire-'))
  const broker = await createBroker({ port: 0, logLevel: 'silent', dataDir }, { access: { ...allowAll, ...access } })
  return {
    broker,
    url: `mqtt://127.0.0.1:${broker.port}`,
    port: broker.port,
    dataDir,
    restart: () => Promise.reject(new Error('not supported here')),
    close: async () => {
      await broker.close()
      await rm(dataDir, { recursive: true, force: true })
    }
  }
}
