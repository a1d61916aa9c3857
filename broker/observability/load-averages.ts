/** The windows of Mosquitto's `$SYS/broker/load/.../{1min,5min,15min}`, in seconds. */
export const LOAD_WINDOWS = [['1min', 60], ['5min', 300], ['15min', 900]] as const

/**
 * Mosquitto's load averages (its sys_tree.c): at each `$SYS` round, the
 * rate since the last round, per minute, is folded into an exponentially
 * decaying moving average per window, as Unix load averages are:
 * `load = rate + e^(-elapsed/window) · (load − rate)`.
 */
export class LoadAverage {
  #last: number | null = null
  #lastAt = 0
  readonly #loads = [0, 0, 0]

  /** Folds in the counter's value at `atMs`; returns the 1, 5 and 15 minute averages (per minute). */
  update (total: number, atMs: number): readonly number[] {
    if (this.#last !== null && atMs > this.#lastAt) {
      const elapsed = (atMs - this.#lastAt) / 1000
      const perMinute = (total - this.#last) * 60 / elapsed
      LOAD_WINDOWS.forEach(([, window], i) => {
        this.#loads[i] = perMinute + Math.exp(-elapsed / window) * (this.#loads[i]! - perMinute)
      })
    }
    if (this.#last === null || atMs > this.#lastAt) {
      this.#last = total
      this.#lastAt = atMs
    }
    return this.#loads
  }
}
