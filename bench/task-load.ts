// The producer's side of the task benchmark, the same for every system: when
// to submit, how many may wait for acknowledgement or completion, and the
// latency of each task from its submit call to the completion the producer
// sees. A system only says how to submit (bench/task-producer-*.ts).
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { LatencyRecorder } from './stats.js'
import { heard, tell, type LoadPlan, type ProducerConfig, type ProducerReport } from './task-ipc.js'

/**
 * Submits `count` tasks, numbered from `first`, and resolves once the system acknowledged them
 * (PUBACK, add() or addBulk() resolved). Later, once per task k in
 * [0, count), it calls `settled(k, ok)` when the producer sees that task
 * complete (ok) or fail for good.
 */
export type Submitter = (first: number, count: number, settled: (k: number, ok: boolean) => void) => Promise<void>

/** Without any acknowledgement or completion for this long, the run is stuck. */
const STALL_MS = 20_000

export class TaskLoad {
  readonly #plan: LoadPlan
  readonly #sentAt: Float64Array
  readonly #settled: Uint8Array
  readonly #latency = new LatencyRecorder()
  #next = 0
  #unacknowledged = 0
  #completed = 0
  #failed = 0
  #firstSubmit = 0
  #lastAck = 0
  #lastCompletion = 0
  #lastProgress = 0
  #error: string | null = null
  #waiter: (() => void) | null = null

  constructor (plan: LoadPlan) {
    this.#plan = plan
    this.#sentAt = new Float64Array(plan.tasks)
    this.#settled = new Uint8Array(plan.tasks)
  }

  async run (submit: Submitter): Promise<ProducerReport> {
    const { tasks, window, maxPending, rate, batch, timeoutMs } = this.#plan
    const loopDelay = monitorEventLoopDelay({ resolution: 10 })
    loopDelay.enable()
    // Re-checks the deadline and stalls even when nothing else wakes the loop.
    const watchdog = setInterval(() => this.#wake(), 500)
    const start = performance.now()
    this.#firstSubmit = start
    this.#lastProgress = start
    const deadline = start + timeoutMs
    try {
      while (this.#next < tasks && this.#error === null && this.#checkTime(deadline)) {
        const pending = this.#next - this.#completed - this.#failed
        // At least one batch may always be outstanding, whatever the window.
        const windowFull = this.#unacknowledged > 0 && this.#unacknowledged + batch > window
        if (windowFull || (maxPending > 0 && pending > 0 && pending + batch > maxPending)) {
          await this.#wait()
          continue
        }
        if (rate > 0) {
          const due = start + this.#next * 1000 / rate
          const now = performance.now()
          if (now < due) {
            await new Promise((resolve) => setTimeout(resolve, due - now))
            continue
          }
        }
        this.#send(submit, Math.min(batch, tasks - this.#next))
      }
      while (this.#completed + this.#failed < this.#next && this.#error === null && this.#checkTime(deadline)) await this.#wait()
    } finally {
      clearInterval(watchdog)
      loopDelay.disable()
    }
    const ms = (value: number | null): number | null => (value === null ? null : Math.round(value * 1000) / 1000)
    return {
      kind: 'report',
      submitted: this.#next,
      completed: this.#completed,
      failed: this.#failed,
      seconds: (Math.max(this.#lastCompletion, this.#firstSubmit) - this.#firstSubmit) / 1000,
      submitSeconds: (Math.max(this.#lastAck, this.#firstSubmit) - this.#firstSubmit) / 1000,
      p50Ms: ms(this.#latency.percentileMs(50)),
      p99Ms: ms(this.#latency.percentileMs(99)),
      maxMs: ms(this.#latency.percentileMs(100)),
      loopDelayMaxMs: Math.round(loopDelay.max / 1e4) / 100,
      error: this.#error
    }
  }

  #send (submit: Submitter, count: number): void {
    const first = this.#next
    this.#next += count
    this.#unacknowledged += count
    const now = performance.now()
    for (let i = first; i < first + count; i++) this.#sentAt[i] = now
    submit(first, count, (k, ok) => this.#settle(first + k, ok)).then(() => {
      this.#unacknowledged -= count
      this.#lastAck = this.#lastProgress = performance.now()
      this.#wake()
    }, (err: unknown) => {
      this.#error ??= `submit failed: ${(err as Error).message}`
      this.#wake()
    })
  }

  #settle (i: number, ok: boolean): void {
    // A redelivered task may report twice: the first report counts.
    if (this.#settled[i] === 1) return
    this.#settled[i] = 1
    const now = performance.now()
    if (ok) {
      this.#completed++
      this.#latency.recordMs(now - (this.#sentAt[i] ?? now))
    } else {
      this.#failed++
    }
    this.#lastCompletion = this.#lastProgress = now
    this.#wake()
  }

  #checkTime (deadline: number): boolean {
    const now = performance.now()
    if (now > deadline) this.#error ??= `timed out after ${Math.round(this.#plan.timeoutMs / 1000)} s`
    else if (now - this.#lastProgress > STALL_MS) this.#error ??= `no acknowledgement or completion for ${STALL_MS / 1000} s`
    return this.#error === null
  }

  #wait (): Promise<void> {
    return new Promise((resolve) => { this.#waiter = resolve })
  }

  #wake (): void {
    const waiter = this.#waiter
    if (waiter === null) return
    this.#waiter = null
    waiter()
  }
}

/** The thumbnail payload of task `i`: valid against schemas/tasks/thumbnail.schema.json, so the broker's gate validates it as in production. */
export function thumbnailPayload (i: number): { imageUrl: string, width: number, height: number } {
  return { imageUrl: `https://bench.example/${i}.png`, width: 64, height: 64 }
}

/**
 * A producer process's life, the same for every system: an unmeasured
 * warm-up (schemas loaded, results subscribed, hot paths compiled on every
 * side), 'ready', the parent's 'start', the measured load and its report;
 * then `close`, whatever happened.
 */
export async function runProducer (label: string, config: ProducerConfig, submit: Submitter, close: () => Promise<void>, prepare?: () => Promise<unknown>): Promise<void> {
  try {
    await prepare?.()
    if (config.warmup > 0) {
      const warm = await new TaskLoad({ ...config.plan, tasks: config.warmup, rate: 0, maxPending: 0 }).run(submit)
      if (warm.error !== null || warm.completed !== config.warmup) throw new Error(`warm-up: ${warm.completed}/${config.warmup} completed (${warm.error ?? 'some failed'})`)
    }
    await tell({ kind: 'ready' })
    await heard('start')
    await tell(await new TaskLoad(config.plan).run(submit))
  } catch (err) {
    process.stderr.write(`${label}: ${(err as Error).stack ?? String(err)}\n`)
    process.exitCode = 1
  } finally {
    await close()
  }
}
