import type { Client } from 'aedes'
import type { LimitOptions } from '../generated/config-types.js'
import type { LimitCounters, LimitName } from '../security/limit-counters.js'
import { pauseReading, resumeReading } from './internals/reading.js'

/** The per-client limits of `limits.*` (schemas/broker-config.schema.json, docs/security.md). */
export type ClientLimitSettings = Required<Pick<LimitOptions,
  'maxTopicBytes' | 'maxTopicLevels' | 'maxClientIdBytes' | 'minKeepaliveSeconds' | 'maxKeepaliveSeconds' |
  'maxSubscriptionsPerClient' | 'publishesPerSecondPerClient'>>

/** No limit beyond what MQTT itself allows: what the adapter uses when it is given none. */
export const UNLIMITED: ClientLimitSettings = Object.freeze({
  maxTopicBytes: 65_535,
  maxTopicLevels: 100,
  maxClientIdBytes: 65_535,
  minKeepaliveSeconds: 0,
  maxKeepaliveSeconds: 65_535,
  maxSubscriptionsPerClient: 0,
  publishesPerSecondPerClient: 0
})

interface Bucket {
  tokens: number
  at: number
  paused: boolean
}

/**
 * What one client may cost: the size of its names, its keep-alive, its
 * subscriptions and its publish rate. Each check answers whether the limit
 * was hit, counts it and logs it once per client ({@link LimitCounters});
 * the hook that asked refuses as MQTT 3.1.1 lets it (CONNACK 0x02,
 * SUBACK 0x80, a disconnect), or, for the publish rate, stops reading.
 */
export class ClientLimits {
  readonly #settings: ClientLimitSettings
  readonly #counters: LimitCounters | undefined
  readonly #buckets = new WeakMap<Client, Bucket>()
  /**
   * The filters each client holds or is being granted: Aedes authorizes the
   * filters of one SUBSCRIBE side by side, before any is in its own list.
   */
  readonly #filters = new WeakMap<Client, Set<string>>()
  readonly #now: () => number

  constructor (settings: ClientLimitSettings, counters?: LimitCounters, now: () => number = Date.now) {
    this.#settings = settings
    this.#counters = counters
    this.#now = now
  }

  /** A CONNECT's client id and keep-alive; the limit it breaks, or null. */
  connectRefusal (clientId: string, keepalive: number, remote: string): LimitName | null {
    const s = this.#settings
    const idBytes = Buffer.byteLength(clientId)
    if (idBytes > s.maxClientIdBytes) return this.#hit('maxClientIdBytes', remote, { bytes: idBytes, max: s.maxClientIdBytes })
    // 0 is "no keep-alive" [MQTT-3.1.2-24 ff.], below any minimum.
    if (keepalive < s.minKeepaliveSeconds || keepalive > s.maxKeepaliveSeconds) {
      return this.#hit('keepaliveBounds', clientId, { keepalive, min: s.minKeepaliveSeconds, max: s.maxKeepaliveSeconds })
    }
    return null
  }

  /** A topic name or filter too long or too deep; the limit it breaks, or null. Runs on every PUBLISH: the byte length is computed only when the string could be too long. */
  topicRefusal (clientId: string, topic: string): LimitName | null {
    const s = this.#settings
    // A UTF-8 character takes at most 3 bytes per UTF-16 unit.
    if (topic.length * 3 > s.maxTopicBytes) {
      const bytes = Buffer.byteLength(topic)
      if (bytes > s.maxTopicBytes) return this.#hit('maxTopicBytes', clientId, { bytes, max: s.maxTopicBytes })
    }
    if (topic.length >= s.maxTopicLevels && levels(topic) > s.maxTopicLevels) {
      return this.#hit('maxTopicLevels', clientId, { levels: levels(topic), max: s.maxTopicLevels })
    }
    return null
  }

  /**
   * Whether one more subscription, to `filter`, is over the limit
   * (re-subscribing to a held filter is not one more). Not refused, it is
   * counted as held until {@link subscriptionDropped}.
   */
  subscriptionRefused (client: Client, filter: string): boolean {
    const max = this.#settings.maxSubscriptionsPerClient
    if (max === 0) return false
    let held = this.#filters.get(client)
    if (held === undefined) {
      held = new Set()
      this.#filters.set(client, held)
    }
    if (held.has(filter)) return false
    if (held.size >= max) {
      this.#hit('maxSubscriptionsPerClient', client.id, { max })
      return true
    }
    held.add(filter)
    return false
  }

  /** `filter` is not held after all (refused by a later check) or no longer (UNSUBSCRIBE). */
  subscriptionDropped (client: Client, filter: string): void {
    this.#filters.get(client)?.delete(filter)
  }

  /**
   * One PUBLISH from `client`, against a token bucket of the per-second rate
   * with a burst of twice that. Over it, the broker stops reading from the
   * client until the bucket has a token again: the client slows down, and
   * nothing it sent is dropped.
   */
  publish (client: Client): void {
    const rate = this.#settings.publishesPerSecondPerClient
    if (rate === 0) return
    const now = this.#now()
    let bucket = this.#buckets.get(client)
    if (bucket === undefined) {
      bucket = { tokens: rate * 2, at: now, paused: false }
      this.#buckets.set(client, bucket)
    }
    bucket.tokens = Math.min(rate * 2, bucket.tokens + (now - bucket.at) * rate / 1000) - 1
    bucket.at = now
    if (bucket.tokens >= 0 || bucket.paused) return
    this.#hit('publishesPerSecondPerClient', client.id, { rate })
    bucket.paused = true
    pauseReading(client)
    const resume = setTimeout(() => {
      bucket.paused = false
      resumeReading(client)
    }, Math.ceil((1 - bucket.tokens) * 1000 / rate))
    resume.unref()
  }

  #hit (limit: LimitName, offender: string, details: Record<string, unknown>): LimitName {
    this.#counters?.hit(limit, offender, details)
    return limit
  }
}

function levels (topic: string): number {
  let count = 1
  for (let i = 0; i < topic.length; i++) if (topic.charCodeAt(i) === 47) count++
  return count
}
