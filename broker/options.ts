import type { Logger } from 'pino'
import { ConfigError } from './errors.js'
import type { Clock } from './scheduler/clock.js'
import { DEFAULT_MAX_DELAY_SECONDS } from './scheduler/delayed-topic.js'
import type { ScheduleInput } from './scheduler/schedule.js'
import { validateSharedOptions, type SharedSubscriptionOptions } from './shared/group-options.js'

export type PersistenceKind = 'level' | 'memory'
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export interface BrokerOptions {
  /**
   * TCP port for MQTT; 0 picks a free one (see `Broker.port`).
   * @defaultValue 1883
   */
  port?: number
  /**
   * Address to listen on. Loopback by default: the broker has no authentication
   * yet, so reaching it from the network is something to choose (`0.0.0.0`).
   * @defaultValue '127.0.0.1'
   */
  host?: string
  /**
   * Where LevelDB keeps sessions, queues, retained messages and the journal.
   * @defaultValue './data'
   */
  dataDir?: string
  /**
   * `level` (durable, default) or `memory` (everything is lost on stop).
   * @defaultValue 'level'
   */
  persistence?: PersistenceKind
  /**
   * Most messages queued for one persistent-session client; at the bound new
   * messages for it are dropped and counted (docs/operations.md). 0 = unbounded.
   * @defaultValue 100000
   */
  maxQueuedPerClient?: number
  /** A pino logger to use; otherwise one is made at `logLevel`. */
  logger?: Logger
  /** @defaultValue 'info' */
  logLevel?: LogLevel
  /**
   * Broker id (Aedes's). Random per start unless set.
   */
  id?: string
  /** Shared-subscription groups (`$share/{group}/{filter}`): defaults and per-group settings. */
  shared?: SharedSubscriptionOptions
  /** The task gate: schema validation of `tasks/{type}` at the broker (docs/tasks.md). */
  tasks?: TaskOptions
  /** Delayed publishing (`$delayed/{seconds}/{topic}`): bounds (docs/scheduling.md). */
  delayed?: DelayedOptions
  /**
   * Periodic schedules kept in step with this list on every start: added,
   * updated, and removed when they leave it (schedules created at runtime
   * through the API are not touched).
   */
  schedules?: ScheduleInput[]
  /** @internal Time for the scheduler; tests pass a ManualClock. @defaultValue the system clock */
  clock?: Clock
}

export interface DelayedOptions {
  /** Longest delay accepted; longer ones are refused (dead-lettered and counted). @defaultValue 4294967 (EMQX's, about 49.7 days) */
  maxDelaySeconds?: number
  /** Most delayed messages waiting at once; beyond it new ones are refused. 0 = unbounded. @defaultValue 1000000 */
  maxPending?: number
}

export interface TaskOptions {
  /** A directory of extra `*.schema.json` task schemas (type = file name). */
  schemasDir?: string
  /** Let `tasks/{type}` through for types without a schema. @defaultValue false */
  allowUnknownTypes?: boolean
  /** Window in which a repeated idempotency key is a duplicate; 0 = off. @defaultValue 86400000 */
  idempotencyWindowMs?: number
}

type Optional = 'logger' | 'id' | 'clock'
export type ResolvedBrokerOptions = Required<Omit<BrokerOptions, Optional | 'delayed'>> & Pick<BrokerOptions, Optional> & {
  delayed: Required<DelayedOptions>
}

export const brokerDefaults: Readonly<Required<Omit<BrokerOptions, Optional>>> = Object.freeze({
  port: 1883,
  host: '127.0.0.1',
  dataDir: './data',
  persistence: 'level',
  maxQueuedPerClient: 100_000,
  logLevel: 'info',
  shared: {},
  tasks: {},
  delayed: {},
  schedules: []
})

export const delayedDefaults = Object.freeze({ maxDelaySeconds: DEFAULT_MAX_DELAY_SECONDS, maxPending: 1_000_000 })

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** Applies defaults and refuses nonsense before anything is opened (STYLE.md 4). */
export function resolveBrokerOptions (options: BrokerOptions): ResolvedBrokerOptions {
  const merged = { ...brokerDefaults, ...stripUndefined(options) }
  const delayed = { ...delayedDefaults, ...stripUndefined(merged.delayed) }
  const resolved: ResolvedBrokerOptions = { ...merged, delayed }
  if (!Number.isInteger(resolved.port) || resolved.port < 0 || resolved.port > 65535) {
    throw new ConfigError('port', `must be an integer from 0 to 65535, got ${String(resolved.port)}`)
  }
  if (typeof resolved.host !== 'string' || resolved.host.length === 0) {
    throw new ConfigError('host', 'must be a non-empty string')
  }
  if (resolved.persistence !== 'level' && resolved.persistence !== 'memory') {
    throw new ConfigError('persistence', `must be "level" or "memory", got ${JSON.stringify(resolved.persistence)}`)
  }
  if (typeof resolved.dataDir !== 'string' || resolved.dataDir.length === 0) {
    throw new ConfigError('dataDir', 'must be a non-empty path')
  }
  if (!Number.isInteger(resolved.maxQueuedPerClient) || resolved.maxQueuedPerClient < 0) {
    throw new ConfigError('maxQueuedPerClient', `must be an integer >= 0, got ${String(resolved.maxQueuedPerClient)}`)
  }
  if (!LOG_LEVELS.includes(resolved.logLevel)) {
    throw new ConfigError('logLevel', `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(resolved.logLevel)}`)
  }
  validateSharedOptions(resolved.shared)
  if (!Number.isFinite(delayed.maxDelaySeconds) || delayed.maxDelaySeconds <= 0) {
    throw new ConfigError('delayed.maxDelaySeconds', `must be a number of seconds > 0, got ${String(delayed.maxDelaySeconds)}`)
  }
  if (!Number.isInteger(delayed.maxPending) || delayed.maxPending < 0) {
    throw new ConfigError('delayed.maxPending', `must be an integer >= 0, got ${String(delayed.maxPending)}`)
  }
  if (!Array.isArray(resolved.schedules)) throw new ConfigError('schedules', 'must be an array of schedules')
  return resolved
}

function stripUndefined<T extends object> (value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
