/**
 * Time as the scheduler sees it. The broker uses the system clock; tests pass
 * a clock they move by hand, so cron ticks, catch-up after downtime and
 * daylight-saving days are tested without waiting for real minutes (docs/scheduling.md).
 */
export interface Clock {
  now (): number
  /** Calls `fn` once `now()` has reached `at` (ms since the epoch). */
  setTimer (fn: () => void, at: number): Timer
}

export interface Timer {
  cancel (): void
}

/** setTimeout takes at most 2^31-1 ms (about 24.8 days); longer waits are chained. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer (fn, at) {
    let handle: NodeJS.Timeout
    const arm = (): void => {
      const wait = at - Date.now()
      if (wait > MAX_TIMEOUT_MS) {
        handle = setTimeout(arm, MAX_TIMEOUT_MS)
      } else {
        handle = setTimeout(fn, Math.max(0, wait))
      }
      // A pending delayed message must not keep a stopping process alive.
      handle.unref()
    }
    arm()
    return { cancel: () => clearTimeout(handle) }
  }
}

/**
 * A clock that moves only when told (`set` / `advance`), firing the timers
 * that fall due, in order. For tests and simulations.
 */
export class ManualClock implements Clock {
  #now: number
  #timers: Array<{ at: number, fn: () => void, seq: number }> = []
  #seq = 0

  constructor (start: number | Date) {
    this.#now = typeof start === 'number' ? start : start.getTime()
  }

  now (): number {
    return this.#now
  }

  setTimer (fn: () => void, at: number): Timer {
    const timer = { at, fn, seq: this.#seq++ }
    // Already due: fire on the next turn, as setTimeout(fn, 0) would.
    if (at <= this.#now) {
      let cancelled = false
      setImmediate(() => { if (!cancelled) fn() })
      return { cancel: () => { cancelled = true } }
    }
    this.#timers.push(timer)
    return { cancel: () => { this.#timers = this.#timers.filter((t) => t !== timer) } }
  }

  /** Timers waiting for the clock to move. */
  get pendingTimers (): number {
    return this.#timers.length
  }

  /** Moves to `to` (never backwards), firing each timer due on the way at its own time. */
  set (to: number | Date): void {
    const target = typeof to === 'number' ? to : to.getTime()
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0]
      if (due === undefined) break
      this.#timers = this.#timers.filter((t) => t !== due)
      this.#now = Math.max(this.#now, due.at)
      due.fn()
    }
    this.#now = Math.max(this.#now, target)
  }

  advance (ms: number): void {
    this.set(this.#now + ms)
  }
}
