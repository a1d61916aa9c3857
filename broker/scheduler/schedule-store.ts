import type { Schedule } from '../../protocol/schedules.js'
import { decodeValue, encodeValue } from '../persistence/packet-codec.js'
import type { KeyValueStore, StoreOp, SublevelOp } from '../persistence/store.js'
import type { DelayedMessage, LevelDelayedStore } from './delayed-store.js'

/** A schedule as stored, with how far it has fired. */
export interface StoredSchedule {
  schedule: Schedule
  source: 'config' | 'api'
  createdAt: number
  updatedAt: number
  /** Every tick at or before this time has been handled (fired or skipped). */
  doneUntil: number
  lastRunAt: number | null
  /** Paused by an operator: fires no tick until resumed (docs/scheduling.md). Absent means running. */
  paused?: boolean
}

/**
 * Where the scheduler (scheduler.ts) keeps its schedules. Each write resolves
 * once it is durable. Conformance suite: test/conformance/schedule-store.suite.ts.
 */
export interface ScheduleStore {
  /** Every stored schedule. */
  load (): Promise<StoredSchedule[]>
  /** Stores `records` (replacing those of the same name) and deletes the schedules named in `removed`, in one write. */
  save (records: StoredSchedule[], removed?: string[]): Promise<void>
  /**
   * Stores `record` (a tick handled: its new `doneUntil`) and queues the
   * tick's `messages` in the delayed store, atomically: a tick is done
   * exactly when its messages are queued, so it is never fired twice (a
   * restart sees it done) and never lost (the delayed queue survives a crash).
   */
  commitTick (record: StoredSchedule, messages: DelayedMessage[]): Promise<void>
}

/**
 * Schedules in their sublevel: key `{name}` (names are [A-Za-z0-9._-], so
 * they need no encoding), value the record as JSON. A tick goes through the
 * delayed store's batcher as one batch holding both sublevels' writes
 * (abstract-level's cross-sublevel batch), in order with its other writes.
 */
export class LevelScheduleStore implements ScheduleStore {
  readonly #sublevel: KeyValueStore
  readonly #delayed: LevelDelayedStore

  constructor (sublevel: KeyValueStore, delayed: LevelDelayedStore) {
    this.#sublevel = sublevel
    this.#delayed = delayed
  }

  async load (): Promise<StoredSchedule[]> {
    const records: StoredSchedule[] = []
    for await (const [, value] of this.#sublevel.iterator()) records.push(decodeValue<StoredSchedule>(value))
    return records
  }

  async save (records: StoredSchedule[], removed: string[] = []): Promise<void> {
    const ops: StoreOp[] = records.map((record) => ({ type: 'put', key: record.schedule.name, value: encode(record) }))
    for (const name of removed) ops.push({ type: 'del', key: name })
    await this.#sublevel.batch(ops)
  }

  async commitTick (record: StoredSchedule, messages: DelayedMessage[]): Promise<void> {
    const ops: SublevelOp[] = messages.map((message) => this.#delayed.putOp(message))
    ops.push({ type: 'put', sublevel: this.#sublevel, key: record.schedule.name, value: encode(record) })
    await this.#delayed.writeOps(ops)
  }
}

/** Only the stored fields: callers may pass richer objects (the scheduler's entries carry timers). */
function encode (record: StoredSchedule): Buffer {
  const stored: StoredSchedule = {
    schedule: record.schedule,
    source: record.source,
    createdAt: record.createdAt,
    updatedAt: record.updatedAt,
    doneUntil: record.doneUntil,
    lastRunAt: record.lastRunAt
  }
  if (record.paused === true) stored.paused = true
  return encodeValue(stored)
}
