import { Cron } from 'croner'
import { ErrorCodes, ScheduleError } from '../../protocol/errors.js'

/**
 * Cron tick times for the durable scheduler, computed by croner 11 in a named time zone.
 *
 * Expressions: standard 5 fields (`minute hour day-of-month month day-of-week`) or 6 with a
 * leading seconds field. Croner's nicknames (`@yearly`, `@annually`, `@monthly`, `@weekly`,
 * `@daily`, `@midnight`, `@hourly`; not `@reboot`) and extensions (`L`, `W`, `#`, `?`, `+`) are
 * accepted too; day and month names are case-insensitive. When both day-of-month and day-of-week
 * are restricted, a day matching either fires, as in Vixie cron (`0 12 13 * FRI` runs on the 13th
 * and on Fridays); a `+` before day-of-week asks for both.
 *
 * Daylight saving time follows Vixie cron, as croner 11 does. A fixed-time job (no `*` and no
 * step in seconds, minutes and hours, e.g. `30 2 * * *` or `30 2,14 * * *`) runs once a day:
 * - a time in a gap (spring forward) runs when the gap ends: `30 2 * * *` in America/New_York
 *   runs on 2026-03-08 at 03:00 EDT (07:00Z);
 * - a time that occurs twice (fall back) runs at the first occurrence only: `30 1 * * *` in
 *   America/New_York runs on 2026-11-01 at 01:30 EDT (05:30Z), not again at 01:30 EST.
 * Every other job is an interval job: it skips times in a gap and runs on both passes through a
 * repeated hour, so `0 * * * *` runs at every real hour (05:00Z, 06:00Z and 07:00Z on 2026-11-01
 * in New York), never twice at one instant. Ticks fall on whole seconds.
 */
export interface CronSpec {
  /** A 5- or 6-field cron expression, or a nickname such as `@daily`. */
  cron: string
  /** An IANA time zone name such as `Europe/Berlin`, or `UTC`. */
  timezone: string
}

/** A validated cron expression in its time zone. Pure: no timers, no clock. */
export interface CompiledCron {
  readonly cron: string
  readonly timezone: string
  /** First tick strictly after `after` (ms epoch), or null if none ever. */
  nextAfter (after: number): number | null
  /** Ticks t with from < t <= to, ascending, at most `limit` of them; `truncated` if more were left out. */
  ticksBetween (from: number, to: number, limit: number): { ticks: number[], truncated: boolean }
  /** Latest tick t with from < t <= to, or null: catch-up 'last' after long downtime without walking every tick. */
  latestBetween (from: number, to: number): number | null
}

const cronerOptions = {
  paused: true, // croner starts no timer for a job without a function; paused makes sure of it
  mode: '5-or-6-parts', // refuse croner's 7th (year) field
  domAndDow: false, // Vixie OR of day-of-month and day-of-week; croner's default, pinned against upgrades
  fixedTimeRule: 'no-wildcard' // `30 2,14 * * *` is fixed-time as in Vixie cron, not skipped in a DST gap
} as const

/**
 * Validates `spec` and compiles it. Throws ScheduleError with code FLEETQ_TIMEZONE_INVALID for a
 * zone `Intl.DateTimeFormat` does not know, FLEETQ_CRON_INVALID for an expression croner refuses
 * or one that never fires (`0 0 30 2 *`); `schedule` is `scheduleName`, `cause` croner's or Intl's error.
 */
export function compileCron (spec: CronSpec, scheduleName?: string): CompiledCron {
  const { cron, timezone } = spec
  const of = scheduleName === undefined ? '' : ` for schedule "${scheduleName}"`
  const refuse = (code: typeof ErrorCodes.CRON_INVALID | typeof ErrorCodes.TIMEZONE_INVALID, message: string, cause?: unknown): ScheduleError =>
    new ScheduleError(code, message, cause === undefined ? { schedule: scheduleName } : { cause, schedule: scheduleName })

  // The zone first, so the message names it: croner blames "the date" for an unknown zone, and
  // takes '' (as Intl takes undefined) to mean the host's zone.
  if (typeof timezone !== 'string') {
    throw refuse(ErrorCodes.TIMEZONE_INVALID, `time zone${of} must be a string such as "Europe/Berlin", got ${typeof timezone}`)
  }
  try {
    new Intl.DateTimeFormat(undefined, { timeZone: timezone })
  } catch (err) {
    throw refuse(ErrorCodes.TIMEZONE_INVALID, `unknown time zone "${timezone}"${of}: expected an IANA name such as "Europe/Berlin" or "UTC"`, err)
  }

  // Croner takes a Date, or a string with ':', as a one-shot ISO date rather than a cron pattern.
  if (typeof cron !== 'string' || cron.includes(':')) {
    const shown = typeof cron === 'string' ? `"${cron}"` : `of type ${typeof cron}`
    throw refuse(ErrorCodes.CRON_INVALID, `invalid cron expression ${shown}${of}: expected 5 or 6 fields or a nickname such as "@daily"`)
  }
  let job: Cron
  try {
    job = new Cron(cron, { ...cronerOptions, timezone })
  } catch (err) {
    throw refuse(ErrorCodes.CRON_INVALID, `invalid cron expression "${cron}"${of}: ${err instanceof Error ? err.message : String(err)}`, err)
  }
  // Without a year field a cron that has no next tick has none ever (Feb 30, Apr 31).
  if (job.nextRun() === null) {
    throw refuse(ErrorCodes.CRON_INVALID, `cron expression "${cron}"${of} never fires`)
  }

  const nextAfter = (after: number): number | null => job.nextRun(toDate('after', after))?.getTime() ?? null

  return Object.freeze({
    cron,
    timezone,
    nextAfter,
    latestBetween (from: number, to: number): number | null {
      if (!(from < to)) return null
      const latest = job.previousRuns(1, toDate('to', to + 1))[0]?.getTime() ?? null
      return latest !== null && latest > from && latest <= to ? latest : null
    },
    ticksBetween (from: number, to: number, limit: number): { ticks: number[], truncated: boolean } {
      toDate('from', from)
      toDate('to', to)
      if (!Number.isInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${limit}`)
      // One nextRun per tick, plus one to learn whether the limit cut any off.
      const ticks: number[] = []
      for (let t = from < to ? nextAfter(from) : null; t !== null && t <= to; t = nextAfter(t)) {
        if (ticks.length === limit) return { ticks, truncated: true }
        ticks.push(t)
      }
      return { ticks, truncated: false }
    }
  })
}

/** Croner throws a TypeError deep inside on an invalid Date; say which argument was wrong. */
function toDate (name: string, ms: number): Date {
  const date = new Date(ms)
  if (Number.isNaN(date.getTime())) throw new RangeError(`${name} must be a time in ms since the epoch, got ${ms}`)
  return date
}
