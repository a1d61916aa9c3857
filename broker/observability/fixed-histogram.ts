/**
 * A histogram with fixed bucket bounds, observed on a hot path without
 * allocating: a linear scan of a dozen bounds and two additions. Prometheus
 * exposition is built from {@link FixedHistogram.snapshot} at scrape time
 * (broker/observability/metrics.ts), which is why this is not prom-client's
 * Histogram: that one is observed through its own API and cannot be set from
 * counts kept elsewhere.
 */
export class FixedHistogram {
  /** Upper bounds (inclusive, Prometheus's `le`), ascending; +Inf is implied. */
  readonly bounds: readonly number[]
  /** Non-cumulative counts per bucket; the last is above the last bound. */
  readonly #counts: Float64Array
  #sum = 0
  #count = 0

  constructor (bounds: readonly number[]) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) throw new Error('histogram bounds must ascend')
    }
    this.bounds = Object.freeze([...bounds])
    this.#counts = new Float64Array(bounds.length + 1)
  }

  observe (value: number): void {
    const bounds = this.bounds
    let i = 0
    while (i < bounds.length && value > bounds[i]!) i++
    this.#counts[i]!++
    this.#sum += value
    this.#count++
  }

  /** Cumulative counts per bound (then +Inf), sum and count: a copy. */
  snapshot (): HistogramSnapshot {
    const cumulative: number[] = []
    let running = 0
    for (const n of this.#counts) cumulative.push(running += n)
    return { bounds: this.bounds, cumulative, sum: this.#sum, count: this.#count }
  }
}

export interface HistogramSnapshot {
  bounds: readonly number[]
  /** Observations at or below each bound, the last entry being +Inf (equal to `count`). */
  cumulative: number[]
  sum: number
  count: number
}

/**
 * Seconds each LevelDB batch write of this process took
 * (`fleetq_persistence_write_seconds`), from 100 µs to 1 s. Process-wide, as
 * prom-client's process metrics are: every write batcher (sessions, groups,
 * delayed messages, idempotency keys) observes into it.
 */
export const persistenceWriteSeconds = new FixedHistogram([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1
])
