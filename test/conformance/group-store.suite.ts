// Conformance suite for GroupStore (broker/shared/group-store.ts): what
// shared-subscription dispatch relies on, for any backend.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { GroupDefinition, GroupMessage, GroupStore, StoredGroup } from '../../broker/shared/group-store.js'
import type { StoreFactory, StoreHarness } from './backends.js'

const definition = (key: string, createdAt = 1_700_000_000_000): GroupDefinition => {
  const slash = key.indexOf('/')
  return { key, group: key.slice(0, slash), filter: key.slice(slash + 1), createdAt }
}

function message (store: GroupStore, topic: string, payload: Buffer | string, extra: Partial<GroupMessage> = {}): GroupMessage {
  return {
    seq: store.nextSeq(),
    topic,
    payload: Buffer.isBuffer(payload) ? payload : Buffer.from(payload),
    qos: 1,
    enqueuedAt: 1_700_000_000_123,
    deliveries: 0,
    ...extra
  }
}

const byKey = (groups: StoredGroup[]): Map<string, StoredGroup> => new Map(groups.map((g) => [g.definition.key, g]))
const payloads = (group: StoredGroup | undefined): string[] => (group?.messages ?? []).map((m) => m.payload.toString())

export function groupStoreSuite (factory: StoreFactory<GroupStore>): void {
  describe('GroupStore conformance', () => {
    let h: StoreHarness<GroupStore>
    beforeEach(() => { h = factory() })
    afterEach(async () => { await h.close() })

    it('starts empty, and hands out increasing sequence numbers', async () => {
      const store = await h.open()
      expect(await store.load()).toEqual([])
      const seqs = [store.nextSeq(), store.nextSeq(), store.nextSeq()]
      expect(seqs[1]).toBeGreaterThan(seqs[0] as number)
      expect(seqs[2]).toBeGreaterThan(seqs[1] as number)
    })

    it('keeps groups and their messages across a restart, each group in seq order, every field intact', async () => {
      let store = await h.open()
      await store.saveGroup(definition('workers/jobs/#', 1_700_000_000_001))
      await store.saveGroup(definition('audit/jobs/+'))
      const binary = Buffer.from([0, 255, 1, 254, 0x80, 0x0a])
      const written: GroupMessage[] = []
      // Interleaved across groups; past 9, 99 and 999 so the key order must be numeric order.
      for (let i = 0; i < 1001; i++) {
        const m = message(store, `jobs/${i}`, i === 500 ? binary : `m${i}`, { qos: i % 7 === 0 ? 0 : 1, deliveries: i % 3 })
        written.push(m)
        await store.append(i % 2 === 0 ? 'workers/jobs/#' : 'audit/jobs/+', m)
      }
      store = await h.restart()
      const groups = byKey(await store.load())
      expect([...groups.keys()].sort()).toEqual(['audit/jobs/+', 'workers/jobs/#'])
      expect(groups.get('workers/jobs/#')?.definition).toEqual(definition('workers/jobs/#', 1_700_000_000_001))
      const workers = groups.get('workers/jobs/#')?.messages ?? []
      const audit = groups.get('audit/jobs/+')?.messages ?? []
      expect(workers.map((m) => m.seq)).toEqual(written.filter((_, i) => i % 2 === 0).map((m) => m.seq))
      expect(audit.map((m) => m.seq)).toEqual(written.filter((_, i) => i % 2 === 1).map((m) => m.seq))
      expect(workers.find((m) => m.topic === 'jobs/500')).toEqual(written[500])
      expect(workers[7]).toEqual(written[14])
      expect(Buffer.isBuffer(audit[0]?.payload)).toBe(true)
    })

    it('never reuses a sequence number after a restart', async () => {
      let store = await h.open()
      await store.saveGroup(definition('g/t'))
      let last = 0
      for (let i = 0; i < 5; i++) {
        const m = message(store, 't', `m${i}`)
        last = m.seq
        await store.append('g/t', m)
      }
      store = await h.restart()
      await store.load()
      expect(store.nextSeq()).toBeGreaterThan(last)
    })

    it('update rewrites a message in place; remove deletes only the given ones', async () => {
      let store = await h.open()
      await store.saveGroup(definition('g/t'))
      const ms = [message(store, 't', 'a'), message(store, 't', 'b'), message(store, 't', 'c'), message(store, 't', 'd')]
      for (const m of ms) await store.append('g/t', m)
      await store.update('g/t', { ...(ms[1] as GroupMessage), deliveries: 4 })
      await store.remove('g/t', [(ms[0] as GroupMessage).seq, (ms[2] as GroupMessage).seq])
      store = await h.restart()
      const group = byKey(await store.load()).get('g/t')
      expect(payloads(group)).toEqual(['b', 'd'])
      expect(group?.messages[0]?.deliveries).toBe(4)
      expect(group?.messages[0]?.seq).toBe((ms[1] as GroupMessage).seq)
    })

    it('deleteGroup removes the group and all its messages, and nothing of groups whose keys share a prefix', async () => {
      let store = await h.open()
      // Keys that are prefixes of each other, with the characters a share filter may hold.
      const keys = ['g/a', 'g/a/b', 'g/a:1', 'g/a+', 'g/$SYS/#', 'g/ünïcode/+']
      for (const key of keys) {
        await store.saveGroup(definition(key))
        await store.append(key, message(store, 'x', key))
        await store.append(key, message(store, 'x', `${key} 2`))
      }
      await store.deleteGroup('g/a')
      store = await h.restart()
      const groups = byKey(await store.load())
      expect([...groups.keys()].sort()).toEqual(keys.filter((k) => k !== 'g/a').sort())
      for (const key of keys.filter((k) => k !== 'g/a')) expect(payloads(groups.get(key))).toEqual([key, `${key} 2`])
    })

    it('drops messages whose group is gone, for good', async () => {
      let store = await h.open()
      await store.saveGroup(definition('g/kept'))
      await store.append('g/kept', message(store, 't', 'kept'))
      // As after a crash between deleting a definition and its messages.
      await store.append('g/ghost', message(store, 't', 'orphan'))
      store = await h.restart()
      expect([...byKey(await store.load()).keys()]).toEqual(['g/kept'])
      await store.saveGroup(definition('g/ghost'))
      store = await h.restart()
      const groups = byKey(await store.load())
      expect(payloads(groups.get('g/ghost'))).toEqual([])
      expect(payloads(groups.get('g/kept'))).toEqual(['kept'])
    })

    it('sentThrough: messages up to the mark come back sent once, later ones new; a lower mark never moves it back; deleteGroup takes it', async () => {
      let store = await h.open()
      await store.saveGroup(definition('g/t'))
      const ms = [message(store, 't', 'a'), message(store, 't', 'b'), message(store, 't', 'c'), message(store, 't', 'd')]
      for (const m of ms) await store.append('g/t', m)
      void store.sentThrough('g/t', ms[0] as GroupMessage)
      await store.sentThrough('g/t', ms[1] as GroupMessage)
      await store.sentThrough('g/t', ms[0] as GroupMessage)
      // a message rewritten with its own count keeps it
      await store.update('g/t', { ...(ms[0] as GroupMessage), deliveries: 3 })
      store = await h.restart()
      let group = byKey(await store.load()).get('g/t')
      expect(group?.messages.map((m) => m.deliveries)).toEqual([3, 1, 0, 0])
      await store.deleteGroup('g/t')
      await store.saveGroup(definition('g/t'))
      const later = message(store, 't', 'e')
      await store.append('g/t', later)
      store = await h.restart()
      group = byKey(await store.load()).get('g/t')
      expect(payloads(group)).toEqual(['e'])
      expect(group?.messages[0]?.deliveries).toBe(0)
    })

    it('a message changed after append and before its write lands is stored as it is at the write', async () => {
      let store = await h.open()
      await store.saveGroup(definition('g/t'))
      const m = message(store, 't', 'a')
      const appended = store.append('g/t', m)
      // dispatch sends it in the same turn (shared-group.ts enqueue)
      m.deliveries = 1
      void store.update('g/t', m)
      await appended
      await store.flush()
      store = await h.restart()
      expect(byKey(await store.load()).get('g/t')?.messages[0]?.deliveries).toBe(1)
    })

    it('flush waits for writes nobody awaited', async () => {
      const store = await h.open()
      await store.saveGroup(definition('g/t'))
      const ms = [message(store, 't', 'a'), message(store, 't', 'b')]
      for (const m of ms) await store.append('g/t', m)
      // Dispatch fires these and moves on.
      void store.update('g/t', { ...(ms[0] as GroupMessage), deliveries: 1 })
      void store.remove('g/t', [(ms[1] as GroupMessage).seq])
      await store.flush()
      // Read back from the database by the same store, with no restart (which would flush too).
      const group = byKey(await store.load()).get('g/t')
      expect(payloads(group)).toEqual(['a'])
      expect(group?.messages[0]?.deliveries).toBe(1)
    })
  })
}
