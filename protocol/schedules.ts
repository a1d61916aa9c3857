/**
 * Schedules on the wire: what the config file, `broker.schedules` and
 * `client.schedules` take and show, and the request/reply bodies on
 * `$fleetq/schedules/request` (docs/scheduling.md).
 */

/** What missed ticks do when the broker starts after downtime (docs/scheduling.md). */
export type CatchUp = 'none' | 'last' | 'all'

/** A periodic publish or task, as given in the config file or to `schedules.upsert()`. */
export interface ScheduleInput {
  /** Unique name: letters, digits, `.`, `_`, `-`; at most 128. */
  name: string
  /** 5-field cron, 6 with seconds first, or a nickname (`@daily`). */
  cron: string
  /** IANA time zone the cron is read in. @defaultValue 'UTC' */
  timezone?: string
  /** Publish `payload` to this topic at each tick. Exactly one of `topic` and `task`. */
  topic?: string
  /** Submit a task of this type at each tick; `payload` is checked against its schema now. */
  task?: string
  /** JSON value; for a topic, a string is sent as it is and anything else as JSON. */
  payload?: unknown
  /** @defaultValue 1 */
  qos?: 0 | 1 | 2
  /** Topic schedules only. @defaultValue false */
  retain?: boolean
  /** @defaultValue 'last' */
  catchUp?: CatchUp
  /** Task schedules: attempts of each task. @defaultValue envelopeDefaults.maxAttempts (3) */
  maxAttempts?: number
  /** Task schedules: ms one attempt may run. @defaultValue envelopeDefaults.timeoutMs (60000) */
  timeoutMs?: number
}

/** A schedule with its defaults filled in. */
export type Schedule = Required<Pick<ScheduleInput, 'name' | 'cron' | 'timezone' | 'qos' | 'retain' | 'catchUp'>> &
  Pick<ScheduleInput, 'topic' | 'task' | 'payload' | 'maxAttempts' | 'timeoutMs'>

/** A schedule as `list()` shows it. */
export interface ScheduleInfo extends Schedule {
  /** `config` (kept in step with the config file) or `api`. */
  source: 'config' | 'api'
  createdAt: string
  updatedAt: string
  /** The last tick fired (its nominal time), or null. */
  lastRunAt: string | null
  /** The next tick, or null if the cron has none left (or the schedule is paused). */
  nextRunAt: string | null
  /** Paused by an operator (the admin API): no tick fires until it is resumed. */
  paused: boolean
}

/** A request on `$fleetq/schedules/request`; the reply goes to `$fleetq/replies/{clientId}/{id}`. */
export type ScheduleRequest =
  | { id: string, op: 'upsert', schedule: unknown }
  | { id: string, op: 'list' }
  | { id: string, op: 'get', name: string }
  | { id: string, op: 'remove', name: string }

export type ScheduleOp = ScheduleRequest['op']
