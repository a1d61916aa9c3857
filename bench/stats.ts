import { readFileSync } from 'node:fs'
import { build, type Histogram } from 'hdr-histogram-js'

/**
 * End-to-end latencies in microseconds. HdrHistogram keeps 3 significant
 * digits in fixed memory, so recording 80,000 deliveries costs no sorting and
 * no garbage in the receive path that is being measured.
 */
export class LatencyRecorder {
  readonly #histogram: Histogram = build({
    lowestDiscernibleValue: 1,
    // An hour in µs: anything slower is clamped rather than dropped.
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3
  })

  recordMs (ms: number): void {
    const us = Math.max(1, Math.round(ms * 1000))
    this.#histogram.recordValue(Math.min(us, 3_600_000_000))
  }

  get count (): number {
    return this.#histogram.totalCount
  }

  /** The latency at `percentile` (0..100) in milliseconds, or null with no samples. */
  percentileMs (percentile: number): number | null {
    if (this.#histogram.totalCount === 0) return null
    return this.#histogram.getValueAtPercentile(percentile) / 1000
  }
}

/** VmRSS of `pid` in bytes from /proc (Linux), or null if it cannot be read. */
export function readRssBytes (pid: number): number | null {
  let status: string
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8')
  } catch {
    return null
  }
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)
  return match?.[1] === undefined ? null : Number(match[1]) * 1024
}

/**
 * CPU time (user + system) `pid` has used, in seconds, from /proc/<pid>/stat,
 * or null if it cannot be read. On a shared machine wall-clock figures move
 * with other load; the broker's CPU time per message moves much less.
 */
export function readCpuSeconds (pid: number): number | null {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return null
  }
  // The command name (field 2) may contain spaces; count fields after its ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const utime = Number(fields[11])
  const stime = Number(fields[12])
  // USER_HZ is 100 on every Linux architecture Node supports (proc(5)).
  return Number.isFinite(utime) && Number.isFinite(stime) ? (utime + stime) / 100 : null
}

/**
 * Peak RSS of a process over a scenario. VmHWM would give the peak over the
 * process's whole life, which mixes scenarios; sampling gives one per run.
 */
export class RssSampler {
  readonly #pid: number | null
  #peak: number | null = null
  #timer: NodeJS.Timeout | null = null

  constructor (pid: number | null, intervalMs = 100) {
    this.#pid = pid
    if (pid === null) return
    this.#sample()
    this.#timer = setInterval(() => this.#sample(), intervalMs)
    // Never keep the load generator alive on its own.
    this.#timer.unref()
  }

  /** Stops sampling and returns the peak in bytes (null if unknown). */
  stop (): number | null {
    if (this.#timer !== null) {
      clearInterval(this.#timer)
      this.#timer = null
      this.#sample()
    }
    return this.#peak
  }

  #sample (): void {
    if (this.#pid === null) return
    const rss = readRssBytes(this.#pid)
    if (rss !== null && (this.#peak === null || rss > this.#peak)) this.#peak = rss
  }
}
