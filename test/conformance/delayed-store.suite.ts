// Conformance suite for DelayedStore (broker/scheduler/delayed-store.ts):
// what the delayed queue (delayed-messages.ts) relies on, for any backend.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { DelayedMessage, DelayedStore, StoredDelayed } from '../../broker/scheduler/delayed-store.js'
import type { StoreFactory, StoreHarness } from './backends.js'

const T = 1_750_000_000_000

function delayed (topic: string, dueAt: number, extra: Partial<DelayedMessage> = {}): DelayedMessage {
  return { topic, payload: Buffer.from(topic), qos: 1, retain: false, dueAt, clientId: 'device-7', ...extra }
}

const topics = (messages: StoredDelayed[]): string[] => messages.map((m) => m.topic)

export function delayedStoreSuite (factory: StoreFactory<DelayedStore>): void {
  describe('DelayedStore conformance', () => {
    let h: StoreHarness<DelayedStore>
    beforeEach(() => { h = factory() })
    afterEach(async () => { await h.close() })

    it('starts empty', async () => {
      const store = await h.open()
      expect(await store.count()).toBe(0)
      expect(await store.earliest()).toBeNull()
      expect(await store.due(Number.MAX_SAFE_INTEGER, 10)).toEqual([])
    })

    it('returns what is due at or before now, earliest first, up to the limit, every field intact', async () => {
      const store = await h.open()
      const binary = Buffer.from([0, 255, 128, 10])
      await store.add(delayed('c', T + 300))
      await store.add(delayed('a', T + 100, { payload: binary, qos: 2, retain: true, clientId: null }))
      await store.add(delayed('later', T + 1_000))
      await store.add(delayed('b', T + 200, { qos: 0 }))
      expect(topics(await store.due(T + 99, 10))).toEqual([])
      // Due exactly at now counts as due.
      expect(topics(await store.due(T + 200, 10))).toEqual(['a', 'b'])
      expect(topics(await store.due(T + 999, 2))).toEqual(['a', 'b'])
      const due = await store.due(T + 999, 10)
      expect(topics(due)).toEqual(['a', 'b', 'c'])
      expect(due[0]).toMatchObject({ topic: 'a', payload: binary, qos: 2, retain: true, dueAt: T + 100, clientId: null })
      expect(due[1]).toMatchObject({ qos: 0, retain: false, clientId: 'device-7', dueAt: T + 200 })
      expect(new Set(due.map((m) => m.key)).size).toBe(3)
      expect(await store.earliest()).toBe(T + 100)
      expect(await store.count()).toBe(4)
    })

    it('keeps arrival order among messages due at the same time, also across a restart', async () => {
      let store = await h.open()
      for (let i = 0; i < 12; i++) await store.add(delayed(`m${i}`, T))
      store = await h.restart()
      for (let i = 12; i < 15; i++) await store.add(delayed(`m${i}`, T))
      store = await h.restart()
      expect(topics(await store.due(T, 100))).toEqual(Array.from({ length: 15 }, (_, i) => `m${i}`))
    })

    it('keeps messages across a restart until removed; a removal is durable', async () => {
      let store = await h.open()
      await store.add(delayed('a', T + 1))
      await store.add(delayed('b', T + 2))
      await store.add(delayed('c', T + 3))
      store = await h.restart()
      expect(await store.count()).toBe(3)
      const [first] = await store.due(T + 1, 10)
      await store.remove([first?.key as string])
      expect(await store.earliest()).toBe(T + 2)
      store = await h.restart()
      expect(topics(await store.due(T + 10, 10))).toEqual(['b', 'c'])
      expect(await store.count()).toBe(2)
      expect(await store.earliest()).toBe(T + 2)
    })

    it('a removal issued before due() is not returned by it', async () => {
      const store = await h.open()
      await store.add(delayed('a', T))
      await store.add(delayed('b', T))
      const [a] = await store.due(T, 1)
      const removal = store.remove([a?.key as string])
      expect(topics(await store.due(T, 10))).toEqual(['b'])
      await removal
      await store.idle()
      expect(await store.count()).toBe(1)
    })

    it('holds due times up to the largest delay and counts a backlog', async () => {
      let store = await h.open()
      // $delayed/{seconds} accepts up to 4,294,967 s (docs/scheduling.md).
      const far = T + 4_294_967_000
      await store.add(delayed('far', far))
      for (let i = 0; i < 250; i++) await store.add(delayed(`n${i}`, T + i))
      store = await h.restart()
      expect(await store.count()).toBe(251)
      expect(await store.earliest()).toBe(T)
      expect(topics(await store.due(far, 1000)).at(-1)).toBe('far')
      expect(await store.due(far - 1, 1000)).toHaveLength(250)
    })
  })
}
