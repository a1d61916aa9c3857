import { ConfigError } from '../errors.js'

export type DispatchStrategy = 'least-inflight' | 'round-robin' | 'random' | 'hash'
export type OverflowPolicy = 'drop-oldest' | 'drop-new'

/** Settings of one shared-subscription group (a durable work queue). */
export interface GroupOptions {
  /**
   * How a message picks its member. `hash` sends one topic to one member while
   * the membership stays the same (per-device ordering).
   * @defaultValue 'least-inflight'
   */
  strategy: DispatchStrategy
  /**
   * Unacknowledged messages a member may hold at once. A worker can ask for
   * its own by publishing `{"prefetch": n}` to `$fleetq/share/prefetch`.
   * @defaultValue 5
   */
  prefetch: number
  /**
   * How long a member may hold a message before it is taken back and sent to
   * another member with the DUP flag (the lease). Longer than a task's
   * default timeout (60 s) plus its longest default backoff (60 s), so a
   * worker that is still within its limits is not raced by another; a member
   * that disconnects loses its messages at once whatever the lease.
   * @defaultValue 180000
   */
  ackTimeoutMs: number
  /**
   * Most messages waiting in the queue (not counting those in flight).
   * @defaultValue 100000
   */
  maxLength: number
  /**
   * At `maxLength`: `drop-oldest` drops the head of the queue for the new
   * message, `drop-new` does not queue the new one. Both are counted.
   * @defaultValue 'drop-oldest'
   */
  overflow: OverflowPolicy
  /**
   * A waiting message older than this is dropped and counted. 0 = no expiry.
   * @defaultValue 0
   */
  messageTtlMs: number
  /**
   * A group with no member for this long is deleted with its messages.
   * 0 = kept until deleted through the API.
   * @defaultValue 0
   */
  idleTimeoutMs: number
}

export interface SharedSubscriptionOptions {
  /** Settings for every group unless overridden. */
  defaults?: Partial<GroupOptions>
  /** Overrides by group name (the `{group}` of `$share/{group}/{filter}`). */
  groups?: Record<string, Partial<GroupOptions>>
}

export const groupDefaults: Readonly<GroupOptions> = Object.freeze({
  strategy: 'least-inflight',
  prefetch: 5,
  ackTimeoutMs: 180_000,
  maxLength: 100_000,
  overflow: 'drop-oldest',
  messageTtlMs: 0,
  idleTimeoutMs: 0
})

const STRATEGIES: readonly DispatchStrategy[] = ['least-inflight', 'round-robin', 'random', 'hash']
const OVERFLOWS: readonly OverflowPolicy[] = ['drop-oldest', 'drop-new']

/** Validates shared-subscription settings up front, naming the bad key. */
export function validateSharedOptions (options: SharedSubscriptionOptions = {}): void {
  check('shared.defaults', options.defaults ?? {})
  for (const [name, group] of Object.entries(options.groups ?? {})) check(`shared.groups.${name}`, group)
}

export function resolveGroupOptions (options: SharedSubscriptionOptions, group: string): GroupOptions {
  return { ...groupDefaults, ...options.defaults, ...options.groups?.[group] }
}

function check (where: string, o: Partial<GroupOptions>): void {
  const int = (key: keyof GroupOptions, min: number): void => {
    const v = o[key]
    if (v !== undefined && (!Number.isInteger(v) || (v as number) < min)) {
      throw new ConfigError(`${where}.${key}`, `must be an integer >= ${min}, got ${JSON.stringify(v)}`)
    }
  }
  int('prefetch', 1)
  int('ackTimeoutMs', 100)
  int('maxLength', 1)
  int('messageTtlMs', 0)
  int('idleTimeoutMs', 0)
  if (o.strategy !== undefined && !STRATEGIES.includes(o.strategy)) {
    throw new ConfigError(`${where}.strategy`, `must be one of ${STRATEGIES.join(', ')}, got ${JSON.stringify(o.strategy)}`)
  }
  if (o.overflow !== undefined && !OVERFLOWS.includes(o.overflow)) {
    throw new ConfigError(`${where}.overflow`, `must be one of ${OVERFLOWS.join(', ')}, got ${JSON.stringify(o.overflow)}`)
  }
}
