// Conformance suite for ScheduleStore (broker/scheduler/schedule-store.ts),
// with the DelayedStore its ticks are queued in: what the scheduler relies
// on, for any backend.
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Schedule } from '../../protocol/schedules.js'
import type { DelayedMessage, DelayedStore } from '../../broker/scheduler/delayed-store.js'
import type { ScheduleStore, StoredSchedule } from '../../broker/scheduler/schedule-store.js'
import type { StoreFactory, StoreHarness } from './backends.js'

export interface ScheduleStores {
  schedules: ScheduleStore
  /** The delayed store `commitTick` queues into. */
  delayed: DelayedStore
}

const T = 1_750_000_000_000

function record (name: string, extra: Partial<StoredSchedule> = {}): StoredSchedule {
  const schedule: Schedule = {
    name, cron: '*/5 * * * *', timezone: 'Europe/Berlin', topic: `ops/${name}`, payload: { n: 1 }, qos: 1, retain: false, catchUp: 'last'
  }
  return { schedule, source: 'api', createdAt: T, updatedAt: T, doneUntil: T, lastRunAt: null, ...extra }
}

function tick (name: string, dueAt: number): DelayedMessage {
  return { topic: `ops/${name}`, payload: Buffer.from(`${name}@${dueAt}`), qos: 1, retain: false, dueAt, clientId: null }
}

const byName = (records: StoredSchedule[]): Map<string, StoredSchedule> => new Map(records.map((r) => [r.schedule.name, r]))

export function scheduleStoreSuite (factory: StoreFactory<ScheduleStores>): void {
  describe('ScheduleStore conformance', () => {
    let h: StoreHarness<ScheduleStores>
    beforeEach(() => { h = factory() })
    afterEach(async () => { await h.close() })

    it('starts empty', async () => {
      const { schedules } = await h.open()
      expect(await schedules.load()).toEqual([])
    })

    it('keeps saved schedules across a restart, every field intact; a later save replaces one', async () => {
      let { schedules } = await h.open()
      const nightly = record('nightly.thumbs_v2-x', { source: 'config', lastRunAt: T - 60_000 })
      await schedules.save([nightly, record('heartbeat')])
      await schedules.save([record('heartbeat', { updatedAt: T + 5, doneUntil: T + 5 })])
      ;({ schedules } = await h.restart())
      const stored = byName(await schedules.load())
      expect([...stored.keys()].sort()).toEqual(['heartbeat', 'nightly.thumbs_v2-x'])
      expect(stored.get('nightly.thumbs_v2-x')).toEqual(nightly)
      expect(stored.get('heartbeat')).toMatchObject({ updatedAt: T + 5, doneUntil: T + 5 })
    })

    it('stores only the record, not other fields of what it is given', async () => {
      const { schedules } = await h.open()
      await schedules.save([{ ...record('a'), timer: { cancel: () => undefined } } as unknown as StoredSchedule])
      expect(await schedules.load()).toEqual([record('a')])
    })

    it('save deletes the schedules named as removed, in the same write, durably', async () => {
      let { schedules } = await h.open()
      await schedules.save([record('a'), record('b'), record('c')])
      await schedules.save([record('d')], ['a', 'c', 'never-existed'])
      ;({ schedules } = await h.restart())
      expect([...byName(await schedules.load()).keys()].sort()).toEqual(['b', 'd'])
    })

    it('commitTick records the tick and queues its messages, both durable', async () => {
      let { schedules, delayed } = await h.open()
      await schedules.save([record('a'), record('b')])
      await schedules.commitTick(record('a', { doneUntil: T + 600_000, lastRunAt: T + 600_000 }), [tick('a', T + 300_000), tick('a', T + 600_000)])
      // No tick due: only how far it has looked is recorded.
      await schedules.commitTick(record('b', { doneUntil: T + 600_000 }), [])
      ;({ schedules, delayed } = await h.restart())
      const stored = byName(await schedules.load())
      expect(stored.get('a')).toMatchObject({ doneUntil: T + 600_000, lastRunAt: T + 600_000 })
      expect(stored.get('b')).toMatchObject({ doneUntil: T + 600_000, lastRunAt: null })
      const due = await delayed.due(T + 600_000, 10)
      expect(due.map((m) => [m.topic, m.payload.toString(), m.dueAt, m.clientId])).toEqual([
        ['ops/a', `a@${T + 300_000}`, T + 300_000, null],
        ['ops/a', `a@${T + 600_000}`, T + 600_000, null]
      ])
    })

    it('ticks go in order with the delayed store\'s own writes', async () => {
      let { schedules, delayed } = await h.open()
      await schedules.save([record('a')])
      await delayed.add(tick('x', T + 1))
      const [x] = await delayed.due(T + 1, 1)
      // The delayed queue removes what it published while a tick is written.
      const removal = delayed.remove([x?.key as string])
      const commit = schedules.commitTick(record('a', { doneUntil: T + 2 }), [tick('a', T + 2)])
      await Promise.all([removal, commit])
      ;({ schedules, delayed } = await h.restart())
      expect((await delayed.due(T + 10, 10)).map((m) => m.topic)).toEqual(['ops/a'])
      expect(byName(await schedules.load()).get('a')?.doneUntil).toBe(T + 2)
    })
  })
}
