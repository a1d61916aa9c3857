import type { Client } from 'aedes'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { connect, type Socket } from 'node:net'
import { dirname, join } from 'node:path'
import { pipeline, Readable, Transform, Writable } from 'node:stream'
import { pipeline as pipelinePromise } from 'node:stream/promises'
import { promisify } from 'node:util'
import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { IDLE_LIST, IDLE_PACKET } from '../broker/mqtt/internals/lean-parser.js'
import { leanQueuePipe, pipeQueue, queuePipes } from '../broker/mqtt/internals/queue-pipe.js'
import { Clients, waitForMessages, waitUntil } from './helpers/mqtt-helpers.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { aedesClientOf } from './helpers/aedes-client.js'

/*
 * Tripwires for the connect-path patches: broker/mqtt/internals/queue-pipe.ts
 * (Aedes's emptyQueue without Node's pipeline()), lean-parser.ts (a plain
 * BufferList from `_resetState`; the list and packet shared while a parser is
 * idle) and lean-client.ts (`_pendingDrains` shared until a write waits for
 * 'drain'). Real broker, real sockets and mqtt.js clients.
 */

interface ParserProbe { _list: unknown, packet: unknown, _stateCounter: number }
type Internals = Client & { _parser: ParserProbe, _pendingDrains: unknown[] }

const aedesDir = dirname(createRequire(import.meta.url).resolve('aedes'))

/** A raw TCP connection that has sent CONNECT and read its CONNACK; `received` collects every byte after it. */
async function rawClient (port: number, clientId: string): Promise<{ socket: Socket, received: Buffer[] }> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => undefined)
  await once(socket, 'connect')
  const received: Buffer[] = []
  const connack = once(socket, 'data')
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 0 } as Parameters<typeof mqttPacket.generate>[0]))
  const [first] = await connack as [Buffer]
  expect(first.subarray(0, 4), 'CONNACK accepted').toEqual(Buffer.from([0x20, 0x02, 0x00, 0x00]))
  if (first.length > 4) received.push(first.subarray(4))
  socket.on('data', (chunk: Buffer) => { received.push(chunk) })
  return { socket, received }
}

describe('connect path (internals/queue-pipe.ts, lean-parser.ts, lean-client.ts)', () => {
  let b: TestBroker | undefined
  const clients = new Clients()
  afterEach(async () => {
    await clients.closeAll()
    await b?.close()
    b = undefined
  })

  const aedesClient = (id: string): Internals => aedesClientOf<Internals>(b, id)

  it("queue pipe: Aedes's emptyQueue hands pipeline() a clearQueue Transform, every CONNECT goes through pipeQueue, and a persistent session still gets its queue", async () => {
    const connectSource = await readFile(join(aedesDir, 'lib', 'handlers', 'connect.js'), 'utf8')
    expect(connectSource, "emptyQueue no longer calls 'stream' pipeline with a through(function clearQueue ...): queue-pipe.ts no longer recognises it").toMatch(
      /import \{ pipeline \} from 'stream'[\s\S]*function emptyQueue \(arg, done\) \{[\s\S]*pipeline\(\s*outgoing,\s*through\(function clearQueue \(/)
    const utilsSource = await readFile(join(aedesDir, 'lib', 'utils.js'), 'utf8')
    expect(utilsSource, 'lib/utils.js through() no longer makes a Transform of the function').toMatch(/export function through \(transform\) \{\s*return new Transform\(\{\s*objectMode: true,\s*transform\s*\}\)/)
    b = await startBroker()
    const topic = uniqueTopic('queue-pipe')
    const before = queuePipes()
    const { client: sub } = await clients.connect(b.url, { clientId: `${topic}-sub`, clean: false })
    await sub.subscribeAsync(`${topic}/#`, { qos: 1 })
    await sub.endAsync()
    const { client: pub } = await clients.connect(b.url, { clientId: `${topic}-pub` })
    for (let i = 0; i < 5; i++) await pub.publishAsync(`${topic}/m`, String(i), { qos: 1 })
    const { messages } = await clients.connect(b.url, { clientId: `${topic}-sub`, clean: false })
    const got = await waitForMessages(messages, 5, 'the queued messages after reconnecting')
    expect(got.map((m) => m.payload.toString())).toEqual(['0', '1', '2', '3', '4'])
    expect(queuePipes() - before, "a CONNECT's emptyQueue went through Node's pipeline(), not pipeQueue").toBe(3)
  })

  it('queue pipe: every other pipeline() call is Node\'s own, promisify still gives stream/promises', async () => {
    leanQueuePipe()
    expect(String(pipeline), "the ES module binding of 'stream'.pipeline is not the replacement").toContain('isEmptyQueueCall')
    const out: string[] = []
    await new Promise<void>((resolve, reject) => {
      pipeline(Readable.from(['a', 'b']), new Writable({ objectMode: true, write (chunk: string, _enc, next) { out.push(chunk); next() } }), (err) => { if (err) reject(err); else resolve() })
    })
    expect(out).toEqual(['a', 'b'])
    expect(promisify(pipeline)).toBe(pipelinePromise)
  })

  it('pipeQueue: what flows is written in order and the callback comes once, after the sink finished; an error destroys both streams and is passed on', async () => {
    const seen: number[] = []
    const sink = (fail?: number): Transform => new Transform({
      objectMode: true,
      transform (n: number, _enc, next) {
        if (n === fail) { next(new Error(`refused ${n}`)); return }
        seen.push(n)
        setImmediate(next)
      }
    })
    let calls = 0
    await new Promise<void>((resolve, reject) => {
      pipeQueue(Readable.from([1, 2, 3]), sink(), (err) => { calls++; if (err) reject(err); else resolve() })
    })
    expect(seen).toEqual([1, 2, 3])
    // A failing write: the error comes back, both ends are destroyed.
    const source = Readable.from([4, 5, 6, 7])
    const failing = sink(5)
    const err = await new Promise<Error | null | undefined>((resolve) => { pipeQueue(source, failing, resolve) })
    expect(err?.message).toBe('refused 5')
    expect(source.destroyed && failing.destroyed).toBe(true)
    // A source that fails: the same.
    const broken = new Readable({ objectMode: true, read () { this.destroy(new Error('store failed')) } })
    const other = sink()
    const err2 = await new Promise<Error | null | undefined>((resolve) => { pipeQueue(broken, other, resolve) })
    expect(err2?.message).toBe('store failed')
    expect(other.destroyed).toBe(true)
    await new Promise((resolve) => setImmediate(resolve))
    expect(calls, 'the callback came more than once').toBe(1)
  })

  it('lean parser: an idle parser holds the shared list and packet, a packet split across reads and a burst in one read still parse, and a parser of nobody\'s never goes idle', async () => {
    b = await startBroker()
    const id = uniqueTopic('idle-parser')
    const { socket, received } = await rawClient(b.port, id)
    const parser = aedesClient(id)._parser
    await waitUntil(() => parser._list === IDLE_LIST, 'the parser to go idle after the CONNECT')
    expect(parser.packet).toBe(IDLE_PACKET)
    expect(Object.isFrozen(IDLE_LIST) && Object.isFrozen(IDLE_PACKET)).toBe(true)
    // SUBSCRIBE split in two reads: between them the parser has a list of its own.
    const subscribe = mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${id}/#`, qos: 0 }] } as Parameters<typeof mqttPacket.generate>[0])
    socket.write(subscribe.subarray(0, 5))
    await waitUntil(() => parser._list !== IDLE_LIST, 'the first half to be read')
    expect((parser._list as { length: number }).length + parser._stateCounter, 'the half packet is not kept').toBeGreaterThan(0)
    socket.write(subscribe.subarray(5))
    await waitUntil(() => Buffer.concat(received).includes(Buffer.from([0x90, 0x03, 0x00, 0x01, 0x00])), 'the SUBACK of the split SUBSCRIBE')
    await waitUntil(() => parser._list === IDLE_LIST, 'the parser to go idle again')
    // 50 PUBLISHes in one write, delivered back to the same client.
    const burst = Buffer.concat(Array.from({ length: 50 }, (_, i) => mqttPacket.generate({ cmd: 'publish', topic: `${id}/b`, payload: Buffer.from(`m${i}`), qos: 0, retain: false, dup: false } as Parameters<typeof mqttPacket.generate>[0])))
    const start = Buffer.concat(received).length
    socket.write(burst)
    await waitUntil(() => Buffer.concat(received).length - start >= burst.length, 'the 50 publishes of one write delivered back')
    expect(Buffer.concat(received).subarray(start).equals(burst), 'the deliveries differ from what was published').toBe(true)
    // An mqtt.js-side parser (no client) is left with a list of its own.
    const own = mqttPacket.parser() as unknown as ParserProbe & { parse: (buf: Buffer) => number }
    own.parse(mqttPacket.generate({ cmd: 'pingreq' } as Parameters<typeof mqttPacket.generate>[0]))
    expect(own._list).not.toBe(IDLE_LIST)
    expect(typeof (own._list as { pipe?: unknown }).pipe, '_resetState still makes a BufferListStream').toBe('undefined')
    socket.destroy()
  })

  it('pending drains: shared while empty, and a subscriber that stops reading still gets every message once it reads again', async () => {
    b = await startBroker()
    const id = uniqueTopic('drains')
    const { socket, received } = await rawClient(b.port, id)
    const internal = aedesClient(id)
    const shared = internal._pendingDrains
    expect(Object.isFrozen(shared), 'client._pendingDrains is not the shared empty array').toBe(true)
    await clients.connect(b.url, { clientId: `${id}-other` })
    expect(aedesClient(`${id}-other`)._pendingDrains, 'each client has an array of its own').toBe(shared)
    socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic: `${id}/big`, qos: 0 }] } as Parameters<typeof mqttPacket.generate>[0]))
    await waitUntil(() => received.length > 0, 'the SUBACK')
    socket.pause()
    const payload = Buffer.alloc(512 * 1024, 1)
    const count = 16
    // Not awaited one by one: a QoS 0 publish settles once its delivery is written, which now waits for 'drain'.
    const published = Promise.all(Array.from({ length: count }, async () => { await b!.broker.publish({ topic: `${id}/big`, payload, qos: 0 }) }))
    await waitUntil(() => internal._pendingDrains !== shared, 'a write to wait for drain (Aedes lib/write.js waitForDrain)')
    expect(shared, 'the shared array was written to').toHaveLength(0)
    socket.resume()
    await published
    await waitUntil(() => Buffer.concat(received).length >= count * payload.length, `${count} messages of 512 KB after reading again`, 20_000)
    socket.destroy()
  })
})
