// The Aedes persistence in the production configuration (trackDeliveries on,
// as createStores builds it), driven the way Aedes drives it: the queue stream
// on connect (lib/handlers/connect.js `emptyQueue`) gives each packet a message
// id and calls outgoingUpdate before writing it, and every connection is a new
// client object. These are the scenarios of the abstract-suite tests skipped in
// that configuration (test/conformance/aedes-production-skips.ts).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Keyspace } from '../broker/persistence/keyspace.js'
import type { LevelPersistence } from '../broker/persistence/level-persistence.js'
import { createSessionStores } from '../broker/persistence/open-persistence.js'
import type { StoredPacket } from '../broker/persistence/packet-codec.js'

interface Connection { id: string, closed?: boolean }

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetq-aedes-store-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function open (location?: string): Promise<LevelPersistence> {
  const keyspace = await Keyspace.open({ location })
  const { persistence } = createSessionStores(keyspace, { trackDeliveries: true })
  await persistence.setup({ id: 'broker-1' })
  // destroy() is idempotent: a test may have destroyed it already.
  cleanups.push(() => persistence.destroy())
  return persistence
}

let counter = 0
function publish (topic: string, payload: string | Buffer, qos: 1 | 2 = 1): StoredPacket {
  return { cmd: 'publish', topic, payload, qos, retain: false, dup: false, brokerId: 'broker-1', brokerCounter: ++counter } as StoredPacket
}

/** What Aedes does with the queue on connect: a message id for each packet, outgoingUpdate, then the write. */
async function connect (p: LevelPersistence, client: Connection, ids = { next: 1 }): Promise<StoredPacket[]> {
  const written: StoredPacket[] = []
  for await (const data of p.outgoingStream(client) as AsyncIterable<StoredPacket>) {
    const packet = { ...data, messageId: data.messageId ?? ids.next++ }
    await p.outgoingUpdate(client, packet)
    written.push(packet)
  }
  return written
}

const text = (packets: StoredPacket[]): string[] => packets.map((p) => Buffer.from(p.payload).toString())

for (const backend of ['LevelDB', 'memory-level'] as const) {
  const openBackend = async (): Promise<LevelPersistence> => open(backend === 'LevelDB' ? await tempDir() : undefined)

  describe(`Aedes persistence with trackDeliveries on ${backend}`, () => {
    it('streams a queue in order, to each of its clients, and the stream ends once Aedes took every packet', async () => {
      const p = await openBackend()
      // Past the stream's read-ahead (16 objects), and a string payload among them.
      for (let i = 0; i < 40; i++) await p.outgoingEnqueueCombi([{ clientId: 'c1' }, { clientId: 'c2' }], publish('hello', i === 3 ? 'three' : Buffer.from(`m${i}`)))
      const expected = Array.from({ length: 40 }, (_, i) => i === 3 ? 'three' : `m${i}`)
      const first = await connect(p, { id: 'c1' })
      expect(text(first)).toEqual(expected)
      // Never sent before: no DUP [MQTT-3.3.1-1].
      expect(first.every((m) => m.dup === false && m.qos === 1 && m.topic === 'hello')).toBe(true)
      expect(text(await connect(p, { id: 'c2' }))).toEqual(expected)
    })

    it('does not stream again to the connection a packet was written on; a new connection gets it with DUP and its message id', async () => {
      const p = await openBackend()
      await p.outgoingEnqueueCombi([{ clientId: 'c' }], publish('t', 'a'))
      await p.outgoingEnqueueCombi([{ clientId: 'c' }], publish('t', 'b'))
      const conn1: Connection = { id: 'c' }
      const sent = await connect(p, conn1, { next: 42 })
      expect(sent.map((m) => m.messageId)).toEqual([42, 43])
      // The same connection again (the abstract suite's "stream it twice"): nothing to send.
      expect(await connect(p, conn1)).toEqual([])
      conn1.closed = true
      const resent = await connect(p, { id: 'c' })
      expect(text(resent)).toEqual(['a', 'b'])
      expect(resent.map((m) => [m.messageId, m.dup])).toEqual([[42, true], [43, true]])
    })

    it('a PUBACK clears its message: returned once, never streamed again', async () => {
      const p = await openBackend()
      for (const payload of ['a', 'b', 'c']) await p.outgoingEnqueueCombi([{ clientId: 'c' }], publish('t', payload))
      const conn1: Connection = { id: 'c' }
      await connect(p, conn1, { next: 1 })
      const cleared = await p.outgoingClearMessageId(conn1, { messageId: 2 })
      expect(cleared && [Buffer.from(cleared.payload).toString(), cleared.messageId]).toEqual(['b', 2])
      expect(await p.outgoingClearMessageId(conn1, { messageId: 2 })).toBeUndefined()
      conn1.closed = true
      const conn2: Connection = { id: 'c' }
      const resent = await connect(p, conn2)
      expect(text(resent)).toEqual(['a', 'c'])
      for (const m of resent) await p.outgoingClearMessageId(conn2, m)
      expect(await connect(p, { id: 'c' })).toEqual([])
      expect(p.queueSizes().get('c') ?? 0).toBe(0)
    })

    it('QoS 2: a PUBREL replaces its PUBLISH and is what a new connection gets', async () => {
      const p = await openBackend()
      await p.outgoingEnqueueCombi([{ clientId: 'c' }], publish('t', 'q2', 2))
      const conn1: Connection = { id: 'c' }
      expect((await connect(p, conn1, { next: 42 })).map((m) => m.messageId)).toEqual([42])
      await p.outgoingUpdate(conn1, { cmd: 'pubrel', messageId: 42 } as StoredPacket)
      conn1.closed = true
      const conn2: Connection = { id: 'c' }
      const resent = await connect(p, conn2)
      expect(resent).toHaveLength(1)
      expect(resent[0]).toMatchObject({ cmd: 'pubrel', messageId: 42 })
      // PUBCOMP
      await p.outgoingClearMessageId(conn2, { messageId: 42 })
      expect(await connect(p, { id: 'c' })).toEqual([])
    })

    it('keeps both of two publishes given the same message id', async () => {
      const p = await openBackend()
      const first = publish('t', 'one', 2)
      const second = publish('t', 'two', 2)
      await p.outgoingEnqueueCombi([{ clientId: 'c' }], first)
      await p.outgoingEnqueueCombi([{ clientId: 'c' }], second)
      const conn1: Connection = { id: 'c' }
      await p.outgoingUpdate(conn1, { ...first, messageId: 42 })
      await p.outgoingUpdate(conn1, { ...second, messageId: 42 })
      conn1.closed = true
      const resent = await connect(p, { id: 'c' })
      expect(resent.map((m) => [Buffer.from(m.payload).toString(), m.brokerCounter, m.messageId, m.dup])).toEqual([
        ['one', first.brokerCounter, 42, true], ['two', second.brokerCounter, 42, true]
      ])
    })

    it('ends the stream of a connection that closes before taking what it was given, and on destroy', async () => {
      const p = await openBackend()
      await p.outgoingEnqueueCombi([{ clientId: 'c' }], publish('t', 'a'))
      const gone: Connection = { id: 'c' }
      const read: StoredPacket[] = []
      const reading = (async () => { for await (const m of p.outgoingStream(gone) as AsyncIterable<StoredPacket>) { read.push(m); gone.closed = true } })()
      await reading
      expect(text(read)).toEqual(['a'])
      // Nothing will take it, and nothing else ends it: destroy does.
      const stuck = (async () => { for await (const _ of p.outgoingStream({ id: 'c' })) { /* never taken */ } })()
      await p.destroy()
      await stuck.catch(() => undefined)
    })
  })
}

describe('Aedes persistence with trackDeliveries across a restart (LevelDB)', () => {
  it('a message sent before the restart comes back with DUP and its message id; one never sent, without', async () => {
    const dir = await tempDir()
    let p = await open(dir)
    await p.outgoingEnqueueCombi([{ clientId: 'c' }], publish('t', 'sent'))
    const conn: Connection = { id: 'c' }
    await connect(p, conn, { next: 7 })
    await p.outgoingEnqueueCombi([{ clientId: 'c' }], publish('t', 'queued'))
    await p.destroy()
    p = await open(dir)
    const resent = await connect(p, { id: 'c' }, { next: 100 })
    expect(resent.map((m) => [Buffer.from(m.payload).toString(), m.messageId, m.dup])).toEqual([['sent', 7, true], ['queued', 100, false]])
  })
})
