import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Keyspace } from '../broker/persistence/keyspace.js'
import type { LevelPersistence } from '../broker/persistence/level-persistence.js'
import { createSessionStores } from '../broker/persistence/open-persistence.js'
import type { StoredPacket } from '../broker/persistence/packet-codec.js'

/*
 * Wills and incoming QoS 2 records (broker/persistence/session-records.ts):
 * the store answers for them from keys kept in memory, so these tests show
 * that what a broker stored is found by the next one on the same LevelDB
 * (a will outlives a crash, [MQTT-3.1.2-8]; a QoS 2 message is delivered once
 * across a restart, [MQTT-4.3.3-2]), and that a client with nothing stored
 * costs no read at all (docs/benchmarks.md "Idle connections").
 */

interface Opened {
  persistence: LevelPersistence
  /** Reads of the `incoming` and `wills` sublevels since opened (get, keys, iterator). */
  reads: () => number
}

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function database (): Promise<{ open: (brokerId: string) => Promise<Opened>, restart: (brokerId: string) => Promise<Opened> }> {
  const location = await mkdtemp(join(tmpdir(), 'fleetq-records-'))
  let keyspace: Keyspace | null = null
  cleanups.push(async () => {
    await keyspace?.close()
    await rm(location, { recursive: true, force: true })
  })
  const open = async (brokerId: string): Promise<Opened> => {
    keyspace = await Keyspace.open({ location })
    let reads = 0
    // Counted in place: the keyspace writes only to the sublevel objects it handed out.
    for (const name of ['incoming', 'wills'] as const) {
      const store = keyspace.sublevel(name)
      const { get, iterator, keys } = store
      store.get = async (key) => { reads++; return await get.call(store, key) }
      store.iterator = (options) => { reads++; return iterator.call(store, options) }
      store.keys = (options) => { reads++; return keys.call(store, options) }
    }
    const { persistence } = createSessionStores(keyspace)
    await persistence.setup({ id: brokerId })
    return { persistence, reads: () => reads }
  }
  return {
    open,
    // Every write awaited above is in LevelDB: closing and reopening it is what
    // a new process after kill -9 finds.
    restart: async (brokerId) => {
      await keyspace?.close()
      keyspace = null
      return await open(brokerId)
    }
  }
}

const will = (topic: string): StoredPacket => ({ cmd: 'publish', topic, payload: Buffer.from('gone'), qos: 1, retain: false, dup: false })
const qos2 = (messageId: number): StoredPacket => ({ cmd: 'publish', topic: 'records/qos2', payload: Buffer.from(`m${messageId}`), qos: 2, retain: false, dup: false, messageId, brokerId: 'old', brokerCounter: messageId })

async function collect (stream: AsyncIterable<unknown>): Promise<unknown[]> {
  const items: unknown[] = []
  for await (const item of stream) items.push(item)
  return items
}

describe('session records (wills, incoming QoS 2) across a restart', () => {
  it('a will stored before a restart is streamed to the next broker and found by getWill until delWill', async () => {
    const db = await database()
    const first = await db.open('old')
    // ':' and '%' in a client id: keys hold it URI-encoded (docs/keyspace.md).
    await first.persistence.putWill({ id: 'dev:1%' }, will('wills/dev1'))
    await first.persistence.putWill({ id: 'dev-2' }, will('wills/dev2'))
    await first.persistence.delWill({ id: 'dev-2' })

    const second = await db.restart('new')
    const streamed = await collect(second.persistence.streamWill({ new: Date.now() })) as StoredPacket[]
    expect(streamed.map((w) => [w.clientId, w.topic, w.brokerId])).toEqual([['dev:1%', 'wills/dev1', 'old']])
    expect((await second.persistence.getWill({ id: 'dev:1%' }))?.payload.toString()).toBe('gone')
    expect(await second.persistence.getWill({ id: 'dev-2' })).toBeUndefined()
    expect((await second.persistence.delWill({ id: 'dev:1%' }))?.topic).toBe('wills/dev1')
    expect(await second.persistence.getWill({ id: 'dev:1%' })).toBeUndefined()

    const third = await db.restart('newer')
    expect(await collect(third.persistence.streamWill({}))).toEqual([])
    expect(await third.persistence.getWill({ id: 'dev:1%' })).toBeUndefined()
  })

  it('incoming QoS 2 records survive a restart; cleanIncoming deletes that client\'s only', async () => {
    const db = await database()
    const first = await db.open('old')
    await first.persistence.incomingStorePacket({ id: 'pub:a' }, qos2(1))
    await first.persistence.incomingStorePacket({ id: 'pub:a' }, qos2(2))
    await first.persistence.incomingStorePacket({ id: 'pub-b' }, qos2(1))

    const second = await db.restart('new')
    expect((await second.persistence.incomingGetPacket({ id: 'pub:a' }, { messageId: 2 })).payload.toString()).toBe('m2')
    await second.persistence.cleanIncoming({ id: 'pub:a' })
    await expect(second.persistence.incomingGetPacket({ id: 'pub:a' }, { messageId: 1 })).rejects.toThrow('no such packet')
    await expect(second.persistence.incomingGetPacket({ id: 'pub:a' }, { messageId: 2 })).rejects.toThrow('no such packet')
    expect((await second.persistence.incomingGetPacket({ id: 'pub-b' }, { messageId: 1 })).payload.toString()).toBe('m1')

    const third = await db.restart('newer')
    await expect(third.persistence.incomingGetPacket({ id: 'pub:a' }, { messageId: 1 })).rejects.toThrow('no such packet')
    expect((await third.persistence.incomingGetPacket({ id: 'pub-b' }, { messageId: 1 })).payload.toString()).toBe('m1')
    await third.persistence.incomingDelPacket({ id: 'pub-b' }, { messageId: 1 })

    const fourth = await db.restart('newest')
    await expect(fourth.persistence.incomingGetPacket({ id: 'pub-b' }, { messageId: 1 })).rejects.toThrow('no such packet')
  })

  it('what CONNECT and close ask for a client with nothing stored is answered without a read', async () => {
    const db = await database()
    const first = await db.open('old')
    await first.persistence.putWill({ id: 'has-will' }, will('wills/w'))
    await first.persistence.incomingStorePacket({ id: 'has-qos2' }, qos2(7))

    const second = await db.restart('new')
    // The first call loads the keys of both sublevels, once.
    expect(await second.persistence.getWill({ id: 'someone' })).toBeUndefined()
    const afterLoad = second.reads()
    for (let i = 0; i < 50; i++) {
      const client = { id: `device-${i}` }
      // Aedes's CONNECT (storeWill, clean session's cleanIncoming), then its close.
      expect(await second.persistence.delWill(client)).toBeUndefined()
      await second.persistence.cleanIncoming(client)
      await second.persistence.cleanIncoming(client)
      await expect(second.persistence.incomingGetPacket(client, { messageId: 1 })).rejects.toThrow('no such packet')
    }
    expect(second.reads()).toBe(afterLoad)
    // Those that have something still read it.
    expect((await second.persistence.getWill({ id: 'has-will' }))?.topic).toBe('wills/w')
    expect((await second.persistence.incomingGetPacket({ id: 'has-qos2' }, { messageId: 7 })).payload.toString()).toBe('m7')
    expect(second.reads()).toBe(afterLoad + 2)
  })
})
