// Conformance suite for JournalStore (broker/persistence/journal-store.ts):
// what the publish journal (broker/durability/publish-journal.ts) relies on to
// make a PUBACK durable, for any backend.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { JournalStore } from '../../broker/persistence/journal-store.js'
import type { StoredPacket } from '../../broker/persistence/packet-codec.js'
import type { StoreFactory, StoreHarness } from './backends.js'

function packet (topic: string, payload: Buffer | string = topic, retain = false): StoredPacket {
  return { cmd: 'publish', topic, payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload), qos: 1, retain, dup: false } as StoredPacket
}

const topics = async (store: JournalStore): Promise<string[]> => (await store.entries()).map((e) => e.packet.topic)

export function journalStoreSuite (factory: StoreFactory<JournalStore>): void {
  describe('JournalStore conformance', () => {
    let h: StoreHarness<JournalStore>
    beforeEach(() => { h = factory() })
    afterEach(async () => { await h.close() })

    it('starts empty; returns entries in append order with their packets intact', async () => {
      const store = await h.open()
      expect(await store.entries()).toEqual([])
      const binary = Buffer.from([0, 255, 0x80, 10])
      await store.append(packet('fleet/a', binary, true))
      await store.append(packet('fleet/b'))
      const entries = await store.entries()
      expect(entries.map((e) => e.packet.topic)).toEqual(['fleet/a', 'fleet/b'])
      expect(entries[0]?.packet).toMatchObject({ topic: 'fleet/a', payload: binary, qos: 1, retain: true })
    })

    it('gives concurrent appends distinct keys, in the order they were called', async () => {
      const store = await h.open()
      // A burst of publishes, all journaled in the same tick.
      const keys = await Promise.all(Array.from({ length: 300 }, (_, i) => store.append(packet(`t/${i}`))))
      expect(new Set(keys).size).toBe(300)
      expect(await topics(store)).toEqual(Array.from({ length: 300 }, (_, i) => `t/${i}`))
      await Promise.all(keys.slice(0, 150).map((key) => store.remove(key)))
      expect(await topics(store)).toEqual(Array.from({ length: 150 }, (_, i) => `t/${i + 150}`))
    })

    it('keeps entries across a restart until removed, and appends after them', async () => {
      let store = await h.open()
      const a = await store.append(packet('a'))
      await store.append(packet('b'))
      await store.append(packet('c'))
      await store.remove(a)
      store = await h.restart()
      expect(await topics(store)).toEqual(['b', 'c'])
      // Past the restart, new keys sort after the old ones (and do not reuse them).
      const before = (await store.entries()).map((e) => e.key)
      const d = await store.append(packet('d'))
      expect(before).not.toContain(d)
      expect(await topics(store)).toEqual(['b', 'c', 'd'])
      for (const { key } of await store.entries()) await store.remove(key)
      store = await h.restart()
      expect(await store.entries()).toEqual([])
    })
  })
}
