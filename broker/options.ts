import type { Logger } from 'pino'
import { checkConfig, mergeConfig } from './config.js'
import {
  configDefaults,
  type BrokerConfig,
  type DelayedOptions,
  type GroupSettings,
  type LimitOptions,
  type ScheduleConfig,
  type TaskOptions
} from './generated/config-types.js'
import type { Clock } from './scheduler/clock.js'

// The options are schemas/broker-config.schema.json, generated into
// broker/generated/config-types.ts (npm run gen:config): one definition for
// the config file, the flags, the environment and createBroker().
export type { DelayedOptions, LogLevel, PersistenceKind, ScheduleConfig, TaskOptions } from './generated/config-types.js'

/**
 * Options of `createBroker()`: every setting of the config file
 * (schemas/broker-config.schema.json, docs/configuration.md), plus what
 * cannot be written in JSON.
 */
export interface BrokerOptions extends Omit<BrokerConfig, '$schema'> {
  /** A pino logger to use; otherwise one is made at `logLevel`. */
  logger?: Logger
  /** @internal Time for the scheduler; tests pass a ManualClock. @defaultValue the system clock */
  clock?: Clock
}

/** The options with every default filled in: what the broker's parts are built from. */
export interface ResolvedBrokerOptions extends Required<Omit<BrokerOptions, 'id' | 'logger' | 'clock' | 'tasks' | 'shared' | 'delayed' | 'schedules' | 'limits'>> {
  id?: string
  logger?: Logger
  clock?: Clock
  tasks: Required<Omit<TaskOptions, 'schemasDir'>> & Pick<TaskOptions, 'schemasDir'>
  shared: { defaults: Required<GroupSettings>, groups: Record<string, GroupSettings> }
  delayed: Required<DelayedOptions>
  limits: Required<LimitOptions>
  schedules: ScheduleConfig[]
}

/**
 * Every default, generated from the `default` keywords of
 * schemas/broker-config.schema.json: the one place they are written.
 */
export const brokerDefaults = configDefaults

/**
 * Applies defaults and refuses nonsense before anything is opened:
 * the options are checked against the config schema, so createBroker() and
 * the config file refuse the same values with the same message, naming the
 * setting by its path (`shared.groups.thumbnails.prefetch`).
 */
export function resolveBrokerOptions (options: BrokerOptions): ResolvedBrokerOptions {
  const { logger, clock, ...serialisable } = options
  checkConfig(serialisable)
  // A copy: the defaults are frozen, and the result is the caller's to keep.
  const resolved = mergeConfig(structuredClone(configDefaults) as object, serialisable) as ResolvedBrokerOptions
  if (logger !== undefined) resolved.logger = logger
  if (clock !== undefined) resolved.clock = clock
  return resolved
}
