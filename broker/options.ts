import type { Logger } from 'pino'
import { ConfigError } from './errors.js'
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
}

export interface TaskOptions {
  /** A directory of extra `*.schema.json` task schemas (type = file name). */
  schemasDir?: string
  /** Let `tasks/{type}` through for types without a schema. @defaultValue false */
  allowUnknownTypes?: boolean
  /** Window in which a repeated idempotency key is a duplicate; 0 = off. @defaultValue 86400000 */
  idempotencyWindowMs?: number
}

type Optional = 'logger' | 'id'
export type ResolvedBrokerOptions = Required<Omit<BrokerOptions, Optional>> & Pick<BrokerOptions, Optional>

export const brokerDefaults: Readonly<Required<Omit<BrokerOptions, Optional>>> = Object.freeze({
  port: 1883,
  host: '127.0.0.1',
  dataDir: './data',
  persistence: 'level',
  maxQueuedPerClient: 100_000,
  logLevel: 'info',
  shared: {},
  tasks: {}
})

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/** Applies defaults and refuses nonsense before anything is opened (STYLE.md 4). */
export function resolveBrokerOptions (options: BrokerOptions): ResolvedBrokerOptions {
  const resolved: ResolvedBrokerOptions = { ...brokerDefaults, ...stripUndefined(options) }
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
  return resolved
}

function stripUndefined<T extends object> (value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>
}
