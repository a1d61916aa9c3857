import { performance } from 'node:perf_hooks'
import { decodePayload } from './load.js'
import { LatencyRecorder } from './stats.js'

export interface TrackerPlan {
  /** Messages each publisher sends, by publisher index. */
  perPublisher: number[]
  subscribers: number
  /** Subscribers that receive each message (all of them in a fan-out). */
  copiesPerMessage: number
  /** Called once a message has reached all its copies (releases QoS 0 windows). */
  onComplete?: (publisher: number) => void
}

/**
 * Counts what subscribers receive: each (subscriber, publisher, seq) once,
 * so a QoS 1 redelivery is a duplicate, not a delivery, and what is missing
 * at the end is what was lost.
 */
export class DeliveryTracker {
  readonly latency = new LatencyRecorder()
  readonly expected: number
  delivered = 0
  duplicates = 0
  /** Payloads that were not from this run (wrong size or ids); should stay 0. */
  unexpected = 0
  /** performance.now() of the last new delivery. */
  lastAt: number | null = null
  readonly done: Promise<void>

  readonly #plan: TrackerPlan
  /** Bit per (subscriber, publisher, seq): seen[subscriber][publisher]. */
  readonly #seen: Uint8Array[][]
  /** Subscribers that got (publisher, seq) so far: copies[publisher][seq]. */
  readonly #copies: Uint16Array[]
  #resolve: () => void = () => undefined

  constructor (plan: TrackerPlan) {
    if (plan.copiesPerMessage > 0xffff) throw new RangeError('at most 65535 copies per message')
    this.#plan = plan
    const total = plan.perPublisher.reduce((sum, n) => sum + n, 0)
    this.expected = total * plan.copiesPerMessage
    this.#seen = Array.from({ length: plan.subscribers }, () => plan.perPublisher.map((n) => new Uint8Array(Math.ceil(n / 8))))
    this.#copies = plan.perPublisher.map((n) => new Uint16Array(n))
    this.done = new Promise<void>((resolve) => { this.#resolve = resolve })
    if (this.expected === 0) this.#resolve()
  }

  get lost (): number {
    return this.expected - this.delivered
  }

  receive (subscriber: number, payload: Buffer): void {
    const now = performance.now()
    const decoded = decodePayload(payload)
    const seen = decoded === null ? undefined : this.#seen[subscriber]?.[decoded.publisher]
    const copies = decoded === null ? undefined : this.#copies[decoded.publisher]
    if (decoded === null || seen === undefined || copies === undefined || decoded.seq >= copies.length) {
      this.unexpected++
      return
    }
    const byte = decoded.seq >>> 3
    const bit = 1 << (decoded.seq & 7)
    const old = seen[byte] ?? 0
    if ((old & bit) !== 0) {
      this.duplicates++
      return
    }
    seen[byte] = old | bit
    this.delivered++
    this.lastAt = now
    this.latency.recordMs(now - decoded.sentAt)
    const count = (copies[decoded.seq] ?? 0) + 1
    copies[decoded.seq] = count
    if (count === this.#plan.copiesPerMessage) this.#plan.onComplete?.(decoded.publisher)
    if (this.delivered === this.expected) this.#resolve()
  }
}
