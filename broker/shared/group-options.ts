import { configDefaults, type GroupSettings, type SharedSubscriptionOptions } from '../generated/config-types.js'

// Group settings are defined once, with their defaults and bounds, in
// schemas/broker-config.schema.json (`GroupSettings`); createBroker checks
// them against it before any group is made (broker/options.ts).
export type { DispatchStrategy, GroupSettings, OverflowPolicy, SharedSubscriptionOptions } from '../generated/config-types.js'

/** Settings of one shared-subscription group (a durable work queue), every one set. */
export type GroupOptions = Required<GroupSettings>

export const groupDefaults: Readonly<GroupOptions> = configDefaults.shared.defaults

export function resolveGroupOptions (options: SharedSubscriptionOptions, group: string): GroupOptions {
  return { ...groupDefaults, ...options.defaults, ...options.groups?.[group] }
}
