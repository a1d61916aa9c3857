// Conformance suite for IdempotencyStore (broker/tasks/idempotency-keys.ts):
// the store itself, then the expiry and bounds IdempotencyKeys keeps on top of
// it, for any backend.
import { pino } from 'pino'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { IdempotencyKeys, type IdempotencyStore } from '../../broker/tasks/idempotency-keys.js'
import type { StoreFactory, StoreHarness } from './backends.js'

const logger = pino({ level: 'silent' })
const T = 1_750_000_000_000
const ids = async (store: IdempotencyStore): Promise<string[]> => (await store.load()).map(({ id }) => id).sort()

export function idempotencyStoreSuite (factory: StoreFactory<IdempotencyStore>): void {
  describe('IdempotencyStore conformance', () => {
    let h: StoreHarness<IdempotencyStore>
    beforeEach(() => { h = factory() })
    afterEach(async () => {
      vi.useRealTimers()
      await h.close()
    })

    it('keeps entries across a restart; put replaces; delete removes', async () => {
      let store = await h.open()
      expect(await store.load()).toEqual([])
      await store.put('thumbnail/order-1', { taskId: 't1', expiresAt: T + 1 })
      await store.put('thumbnail/ördér:2', { taskId: 't2', expiresAt: T + 2 })
      await store.put('report/order-1', { taskId: 't3', expiresAt: T + 3 })
      await store.put('thumbnail/order-1', { taskId: 't1b', expiresAt: T + 4 })
      await store.delete(['report/order-1', 'not/stored'])
      store = await h.restart()
      const loaded = new Map((await store.load()).map(({ id, entry }) => [id, entry]))
      expect([...loaded.keys()].sort()).toEqual(['thumbnail/order-1', 'thumbnail/ördér:2'])
      expect(loaded.get('thumbnail/order-1')).toEqual({ taskId: 't1b', expiresAt: T + 4 })
      expect(loaded.get('thumbnail/ördér:2')).toEqual({ taskId: 't2', expiresAt: T + 2 })
    })

    it('flush waits for writes nobody awaited', async () => {
      const store = await h.open()
      await store.put('a/1', { taskId: 'x', expiresAt: T })
      void store.put('a/2', { taskId: 'y', expiresAt: T })
      void store.delete(['a/1'])
      await store.flush()
      expect(await ids(store)).toEqual(['a/2'])
    })

    describe('with IdempotencyKeys on top', () => {
      it('a committed key is a duplicate after a restart; a claimed but uncommitted one is not', async () => {
        vi.useFakeTimers({ toFake: ['Date'] })
        vi.setSystemTime(T)
        let store = await h.open()
        let keys = await IdempotencyKeys.open(store, 60_000, 100, logger)
        const first = keys.claim('thumbnail', 'order-1', 'task-1')
        if (first.duplicate) throw new Error('first claim is a duplicate')
        await first.commit()
        keys.claim('thumbnail', 'order-2', 'task-2') // refused later: never committed
        await keys.flush()
        store = await h.restart()
        keys = await IdempotencyKeys.open(store, 60_000, 100, logger)
        expect(keys.claim('thumbnail', 'order-1', 'task-9')).toEqual({ duplicate: true, taskId: 'task-1' })
        expect(keys.claim('thumbnail', 'order-2', 'task-9').duplicate).toBe(false)
        // The key is per task type.
        expect(keys.claim('report', 'order-1', 'task-9').duplicate).toBe(false)
      })

      it('expired keys are dropped at start, from memory and from the store', async () => {
        vi.useFakeTimers({ toFake: ['Date'] })
        vi.setSystemTime(T)
        let store = await h.open()
        let keys = await IdempotencyKeys.open(store, 60_000, 100, logger)
        for (const [key, at] of [['old', T], ['new', T + 30_000]] as const) {
          vi.setSystemTime(at)
          const claim = keys.claim('thumbnail', key, `task-${key}`)
          if (!claim.duplicate) await claim.commit()
        }
        await keys.flush()
        // Past the first key's window, not the second's.
        vi.setSystemTime(T + 70_000)
        store = await h.restart()
        keys = await IdempotencyKeys.open(store, 60_000, 100, logger)
        expect(keys.size).toBe(1)
        expect(await ids(store)).toEqual(['thumbnail/new'])
        expect(keys.claim('thumbnail', 'old', 'x').duplicate).toBe(false)
        expect(keys.claim('thumbnail', 'new', 'x').duplicate).toBe(true)
      })

      it('beyond the size bound the oldest keys go, from the store too', async () => {
        const store = await h.open()
        const keys = await IdempotencyKeys.open(store, 60_000, 2, logger)
        for (const key of ['a', 'b', 'c']) {
          const claim = keys.claim('thumbnail', key, `task-${key}`)
          if (!claim.duplicate) await claim.commit()
        }
        await keys.flush()
        expect(keys.evicted).toBe(1)
        expect(await ids(store)).toEqual(['thumbnail/b', 'thumbnail/c'])
      })
    })
  })
}
