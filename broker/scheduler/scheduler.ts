import type { Logger } from 'pino'
import type { TaskSchemas } from '../../protocol/schema-registry.js'
import { ErrorCodes, ScheduleError } from '../../protocol/errors.js'
import type { Clock, Timer } from './clock.js'
import type { CompiledCron } from './cron-spec.js'
import type { DelayedMessages } from './delayed-messages.js'
import type { DelayedMessage } from './delayed-store.js'
import type { ScheduleStore, StoredSchedule } from './schedule-store.js'
import type { Schedule, ScheduleInfo } from '../../protocol/schedules.js'
import { normalizeSchedule, sameSchedule, tickMessage } from './schedule.js'

/** Most missed ticks `catchUp: 'all'` publishes after downtime; older ones are skipped and logged. */
export const MAX_CATCH_UP_TICKS = 10_000

interface Entry extends StoredSchedule {
  cron: CompiledCron
  timer: Timer | null
}

export interface SchedulerOptions {
  /** Where schedules are kept; its `commitTick` also queues a tick's messages in the delayed store. */
  store: ScheduleStore
  delayed: DelayedMessages
  schemas: TaskSchemas
  clock: Clock
  logger: Logger
  /** Schedules from the config file: kept in step with this list on start. */
  fromConfig: unknown[]
  /** Where a task schedule's ticks are submitted: the task gate's `topicPrefix`. @defaultValue 'tasks/' */
  taskTopicPrefix?: string
}

export interface SchedulerStats {
  schedules: number
  /** Ticks fired since start. */
  fired: number
  /** Missed ticks skipped since start (catchUp 'none' or 'last', past MAX_CATCH_UP_TICKS, or due while paused). */
  skipped: number
  /** Schedules paused now (docs/scheduling.md). */
  paused: number
  /** Manual runs since start (`trigger`, the admin API): not ticks, not in `fired`. */
  triggered: number
  /**
   * How late each fired tick was, from its nominal time to the moment the
   * scheduler handed it to the delayed queue: ticks caught up after downtime
   * count their whole delay (docs/scheduling.md).
   */
  lateness: { count: number, sumMs: number, maxMs: number }
}

/**
 * Durable cron schedules. A tick is fired by one atomic write
 * (`ScheduleStore.commitTick`: one LevelDB batch) that both records it as
 * done and stores its message in the delayed queue, due at the tick: so a tick is never fired twice (a restart sees it done) and
 * never lost (its message is published by the delayed queue, which survives
 * a crash). There is one scheduler per data directory, inside the broker: no
 * separate process to die unnoticed.
 */
export class Scheduler {
  readonly #options: SchedulerOptions
  readonly #entries = new Map<string, Entry>()
  readonly #counters = { fired: 0, skipped: 0, triggered: 0 }
  readonly #lateness = { count: 0, sumMs: 0, maxMs: 0 }
  #closed = false
  /** Writes run one after another so two changes to one schedule land in order. */
  #chain: Promise<unknown> = Promise.resolve()

  private constructor (options: SchedulerOptions) {
    this.#options = options
  }

  /** Loads stored schedules, applies the config list, handles ticks missed while stopped, arms timers. */
  static async start (options: SchedulerOptions): Promise<Scheduler> {
    const scheduler = new Scheduler(options)
    // Refuse a bad config schedule before touching the store.
    const configured = options.fromConfig.map((input) => normalizeSchedule(input, options.schemas))
    const names = new Set<string>()
    for (const { schedule } of configured) {
      if (names.has(schedule.name)) throw new ScheduleError(ErrorCodes.SCHEDULE_INVALID, `schedule "${schedule.name}" is configured twice`, { schedule: schedule.name })
      names.add(schedule.name)
    }
    const stored = new Map<string, StoredSchedule>()
    for (const record of await options.store.load()) stored.set(record.schedule.name, record)
    const now = options.clock.now()
    const records: StoredSchedule[] = []
    const removed: string[] = []
    for (const [name, record] of stored) {
      if (record.source === 'config' && !names.has(name)) {
        removed.push(name)
        options.logger.info({ schedule: name }, 'schedule removed: no longer in the config')
        continue
      }
      if (record.source === 'config') continue
      try {
        const { schedule, cron } = normalizeSchedule(record.schedule, options.schemas)
        scheduler.#entries.set(name, { ...record, schedule, cron, timer: null })
      } catch (err) {
        // A schema changed under a stored schedule: keep it stored, do not run it.
        options.logger.error({ schedule: name, err: (err as Error).message }, 'stored schedule is no longer valid; not running it')
      }
    }
    for (const { schedule, cron } of configured) {
      const previous = stored.get(schedule.name)
      const entry = scheduler.#merge(previous, schedule, cron, 'config', now)
      scheduler.#entries.set(schedule.name, entry)
      records.push(entry)
    }
    await options.store.save(records, removed)
    for (const entry of scheduler.#entries.values()) {
      // A paused schedule stays as it was: its missed ticks are skipped when it resumes.
      if (entry.paused === true) continue
      await scheduler.#fire(entry, true)
    }
    return scheduler
  }

  /** Creates or replaces a schedule; refused (ScheduleError) before anything is stored if it is invalid. */
  upsert (input: unknown, source: 'api' | 'config' = 'api'): Promise<ScheduleInfo> {
    const { schedule, cron } = normalizeSchedule(input, this.#options.schemas)
    return this.#serial(async () => {
      const previous = this.#entries.get(schedule.name)
      previous?.timer?.cancel()
      const entry = this.#merge(previous, schedule, cron, source, this.#options.clock.now())
      await this.#options.store.save([entry])
      this.#entries.set(schedule.name, entry)
      this.#arm(entry)
      this.#options.logger.info({ schedule: schedule.name, cron: schedule.cron, timezone: schedule.timezone, nextRunAt: this.#info(entry).nextRunAt }, previous === undefined ? 'schedule created' : 'schedule updated')
      return this.#info(entry)
    })
  }

  /** Every schedule with its next and last run, by name. */
  list (): ScheduleInfo[] {
    return [...this.#entries.values()].map((e) => this.#info(e)).sort((a, b) => a.name.localeCompare(b.name))
  }

  get (name: string): ScheduleInfo {
    const entry = this.#entries.get(name)
    if (entry === undefined) throw notFound(name)
    return this.#info(entry)
  }

  /** Deletes a schedule; ticks already fired still publish. */
  remove (name: string): Promise<void> {
    return this.#serial(async () => {
      const entry = this.#entries.get(name)
      if (entry === undefined) throw notFound(name)
      entry.timer?.cancel()
      await this.#options.store.save([], [name])
      this.#entries.delete(name)
      this.#options.logger.info({ schedule: name }, 'schedule removed')
    })
  }

  /**
   * Stops a schedule durably: no tick fires until {@link resume}, across
   * restarts too. A removed or replaced schedule keeps its paused state (upsert keeps it).
   */
  pause (name: string): Promise<ScheduleInfo> {
    return this.#serial(async () => {
      const entry = this.#found(name)
      if (entry.paused === true) return this.#info(entry)
      entry.timer?.cancel()
      entry.timer = null
      await this.#options.store.save([{ ...entry, paused: true }])
      entry.paused = true
      this.#options.logger.info({ schedule: name }, 'schedule paused')
      return this.#info(entry)
    })
  }

  /**
   * Runs a paused schedule again from now: the ticks that fell due while it
   * was paused are skipped (counted in `skipped`), whatever its `catchUp`;
   * that setting is about downtime, a pause is on purpose.
   */
  resume (name: string): Promise<ScheduleInfo> {
    return this.#serial(async () => {
      const entry = this.#found(name)
      if (entry.paused !== true) return this.#info(entry)
      const now = this.#options.clock.now()
      const missed = entry.cron.ticksBetween(entry.doneUntil, now, MAX_CATCH_UP_TICKS)
      const updated: StoredSchedule = { ...entry, doneUntil: Math.max(entry.doneUntil, now) }
      delete updated.paused
      await this.#options.store.save([updated])
      entry.paused = false
      entry.doneUntil = updated.doneUntil
      this.#counters.skipped += missed.ticks.length + (missed.truncated ? 1 : 0)
      this.#arm(entry)
      this.#options.logger.info({ schedule: name, skipped: missed.ticks.length }, 'schedule resumed')
      return this.#info(entry)
    })
  }

  /**
   * Publishes (or submits) the schedule's message now, once, paused or not.
   * A manual run is not a tick: `lastRunAt` stays the last cron tick and
   * the timetable (`nextRunAt`) is unchanged. It goes the way a tick goes,
   * through the delayed queue (due now), so it survives a crash once this
   * resolves; a task is a new envelope created now.
   */
  trigger (name: string): Promise<ScheduleInfo> {
    return this.#serial(async () => {
      const entry = this.#found(name)
      const now = this.#options.clock.now()
      const { topic, payload } = tickMessage(entry.schedule, now, this.#options.taskTopicPrefix)
      const message: DelayedMessage = { topic, payload, qos: entry.schedule.qos, retain: entry.schedule.retain, dueAt: now, clientId: null }
      // The record is written unchanged: the store's one atomic way to queue a schedule's message.
      await this.#options.store.commitTick(entry, [message])
      this.#options.delayed.added(now)
      this.#counters.triggered++
      this.#options.logger.info({ schedule: name, topic }, 'schedule triggered by hand')
      return this.#info(entry)
    })
  }

  stats (): SchedulerStats {
    let paused = 0
    for (const entry of this.#entries.values()) if (entry.paused === true) paused++
    return { schedules: this.#entries.size, ...this.#counters, paused, lateness: { ...this.#lateness } }
  }

  async close (): Promise<void> {
    this.#closed = true
    for (const entry of this.#entries.values()) entry.timer?.cancel()
    await this.#chain.catch(() => undefined)
  }

  #merge (previous: StoredSchedule | undefined, schedule: Schedule, cron: CompiledCron, source: 'config' | 'api', now: number): Entry {
    if (previous !== undefined && sameSchedule(previous.schedule, schedule)) {
      return { ...previous, schedule, cron, source, timer: null }
    }
    // A new or changed timing starts from now: no catch-up for ticks from before it existed.
    const sameTiming = previous !== undefined && previous.schedule.cron === schedule.cron && previous.schedule.timezone === schedule.timezone
    // Pausing is an operator's act, not part of the definition: a replaced schedule stays paused.
    const paused = previous?.paused === true ? { paused: true } : {}
    return {
      ...paused,
      schedule,
      cron,
      source,
      createdAt: previous?.createdAt ?? now,
      updatedAt: now,
      doneUntil: sameTiming ? previous.doneUntil : now,
      lastRunAt: previous?.lastRunAt ?? null,
      timer: null
    }
  }

  #arm (entry: Entry): void {
    entry.timer?.cancel()
    entry.timer = null
    if (this.#closed || entry.paused === true) return
    const next = entry.cron.nextAfter(entry.doneUntil)
    if (next === null) return
    entry.timer = this.#options.clock.setTimer(() => {
      entry.timer = null
      this.#serial(() => this.#fire(entry, false)).catch((err: unknown) => {
        this.#options.logger.error({ err, schedule: entry.schedule.name }, 'could not fire schedule; retrying in 1 s')
        if (!this.#closed && this.#entries.get(entry.schedule.name) === entry) {
          entry.timer = this.#options.clock.setTimer(() => { this.#arm(entry) }, this.#options.clock.now() + 1000)
        }
      })
    }, next)
  }

  /**
   * Fires the ticks in (doneUntil, now]. On start those are the ticks missed
   * while the broker was down, and `catchUp` decides: 'none' skips them,
   * 'last' fires the latest, 'all' fires each (oldest first). While running,
   * a timer fires its own tick; if the process was suspended past several,
   * 'all' fires each and the others fire the latest.
   */
  async #fire (entry: Entry, starting: boolean): Promise<void> {
    if (this.#entries.get(entry.schedule.name) !== entry) return // removed or replaced meanwhile
    if (entry.paused === true) return // paused meanwhile
    const { clock, delayed, store, logger } = this.#options
    const now = clock.now()
    const mode = entry.schedule.catchUp
    // One bounded walk over the ticks due: what 'all' fires, and what the others skip.
    const due = entry.cron.ticksBetween(entry.doneUntil, now, MAX_CATCH_UP_TICKS)
    let ticks: number[] = []
    if (mode === 'all') {
      ticks = due.ticks
      if (due.truncated) logger.warn({ schedule: entry.schedule.name, fired: ticks.length }, 'more missed ticks than MAX_CATCH_UP_TICKS; firing the oldest, skipping the rest')
    } else if (!(starting && mode === 'none')) {
      // Past the walk's bound the latest tick is found directly, not by walking to it.
      const latest = due.truncated ? entry.cron.latestBetween(entry.doneUntil, now) : due.ticks.at(-1) ?? null
      if (latest !== null) ticks = [latest]
    }
    // At least this many: past MAX_CATCH_UP_TICKS the rest are not counted.
    const missed = due.ticks.length - (mode === 'all' || !due.truncated ? ticks.length : 0) + (due.truncated ? 1 : 0)
    if (missed > 0) {
      this.#counters.skipped += missed
      if (starting) logger.info({ schedule: entry.schedule.name, catchUp: mode, firing: ticks.length, skipped: missed }, 'missed ticks while stopped')
    }
    const messages: DelayedMessage[] = ticks.map((tick) => {
      const { topic, payload } = tickMessage(entry.schedule, tick, this.#options.taskTopicPrefix)
      return { topic, payload, qos: entry.schedule.qos, retain: entry.schedule.retain, dueAt: tick, clientId: null }
    })
    const updated: Entry = { ...entry, doneUntil: now, lastRunAt: ticks.at(-1) ?? entry.lastRunAt }
    // One write: the tick is done exactly when its message is queued.
    await store.commitTick(updated, messages)
    entry.doneUntil = updated.doneUntil
    entry.lastRunAt = updated.lastRunAt
    this.#counters.fired += ticks.length
    for (const tick of ticks) {
      const late = Math.max(0, now - tick)
      this.#lateness.count++
      this.#lateness.sumMs += late
      if (late > this.#lateness.maxMs) this.#lateness.maxMs = late
    }
    const first = ticks[0]
    if (first !== undefined) delayed.added(first, ticks.length)
    this.#arm(entry)
  }

  #serial<T> (fn: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(fn, fn)
    this.#chain = run.catch(() => undefined)
    return run
  }

  #found (name: string): Entry {
    const entry = this.#entries.get(name)
    if (entry === undefined) throw notFound(name)
    return entry
  }

  #info (entry: Entry): ScheduleInfo {
    const paused = entry.paused === true
    const next = paused ? null : entry.cron.nextAfter(Math.max(entry.doneUntil, this.#options.clock.now()))
    return {
      ...entry.schedule,
      source: entry.source,
      createdAt: new Date(entry.createdAt).toISOString(),
      updatedAt: new Date(entry.updatedAt).toISOString(),
      lastRunAt: entry.lastRunAt === null ? null : new Date(entry.lastRunAt).toISOString(),
      nextRunAt: next === null ? null : new Date(next).toISOString(),
      paused
    }
  }
}

function notFound (name: string): ScheduleError {
  return new ScheduleError(ErrorCodes.SCHEDULE_NOT_FOUND, `no schedule named "${name}"`, { schedule: name })
}
