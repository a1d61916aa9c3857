import type { Logger } from 'pino'
import type { Clock, Timer } from './clock.js'
import type { DelayedMessage, DelayedStore, StoredDelayed } from './delayed-store.js'
import type { DelayedTopicRefusal } from '../../protocol/delayed-topic.js'

export type DelayedRefusal = DelayedTopicRefusal | 'too-many-pending'

export interface DelayedStats {
  /** Messages waiting for their time. */
  pending: number
  /** Accepted since start. */
  accepted: number
  /** Published at their time since start (including ones due while the broker was down). */
  fired: number
  /** Refused since start, by reason; each became a dead letter on `$fleetq/dead/$delayed`. */
  refused: Record<DelayedRefusal, number>
  /** Due time of the earliest waiting message (ISO), or null. */
  nextDueAt: string | null
  /** How late the last fired message was, in ms after its due time. */
  lastLatenessMs: number | null
}

export interface DelayedMessagesOptions {
  store: DelayedStore
  clock: Clock
  logger: Logger
  /** Publishes a message that fell due; resolves once the broker has stored and routed it. */
  publish: (message: StoredDelayed) => Promise<void>
  maxPending: number
  /** Messages published per turn of the event loop when many fall due at once. */
  batchSize?: number
}

/**
 * Publishes delayed messages at their time (docs/scheduling.md). They wait in LevelDB,
 * not in memory: only the earliest due time is held, with one timer. When it
 * fires, due messages are read in batches, published, and removed once the
 * broker has routed them: a crash in between publishes them again (at least
 * once, as QoS 1 allows), never loses them. Between batches the loop yields,
 * so a large backlog falling due does not hold up other traffic.
 */
export class DelayedMessages {
  readonly #options: Required<DelayedMessagesOptions>
  /** Stored at start (null until the start-up count is in). */
  #stored: number | null = null
  /** Added (accepted, or ticks written by schedules) since start, and being added now. */
  #added = 0
  #accepted = 0
  #fired = 0
  readonly #refused: Record<DelayedRefusal, number> = { 'delay-not-a-number': 0, 'delay-too-long': 0, 'target-missing': 0, 'target-invalid': 0, 'too-many-pending': 0 }
  #nextDueAt: number | null = null
  #timer: Timer | null = null
  #draining: Promise<void> | null = null
  #again = false
  #closed = false
  #lastLatenessMs: number | null = null
  #counting: Promise<void> = Promise.resolve()

  private constructor (options: Required<DelayedMessagesOptions>) {
    this.#options = options
  }

  get #pending (): number {
    return Math.max(0, (this.#stored ?? 0) + this.#added - this.#fired)
  }

  /**
   * Counts what waits and publishes, oldest first, what fell due while the
   * broker was down. Resolves before that catch-up finishes: clients can
   * connect meanwhile.
   */
  static async start (options: DelayedMessagesOptions): Promise<DelayedMessages> {
    const delayed = new DelayedMessages({ batchSize: 500, ...options })
    // Counting is a key scan (about 200-300 ms for 100,000 on this project's
    // machine, docs/benchmarks.md): not awaited, so a backlog does not delay
    // listening. Its iterator reads a snapshot taken now, before anything
    // fires or is added, so stored + added - fired stays exact; until it ends
    // `pending` (and the maxPending check) leave the stored backlog out.
    delayed.#counting = options.store.count().then((stored) => {
      delayed.#stored = stored
      if (stored > 0) options.logger.info({ pending: stored }, 'delayed messages waiting')
    }, (err: unknown) => { options.logger.error({ err }, 'could not count delayed messages') })
    await delayed.#rearm()
    return delayed
  }

  /** Resolves once the start-up count of stored messages is in `stats().pending`. */
  async counted (): Promise<void> {
    await this.#counting
  }

  /** Whether another message may be accepted (`maxPending`). */
  hasRoom (): boolean {
    return this.#options.maxPending === 0 || this.#pending < this.#options.maxPending
  }

  refused (reason: DelayedRefusal): void {
    this.#refused[reason]++
  }

  /** Stores `message` to publish `delayMs` from now; resolves once it is on disk. */
  async accept (message: Omit<DelayedMessage, 'dueAt'>, delayMs: number): Promise<void> {
    const dueAt = this.#options.clock.now() + delayMs
    // Counted while being written, so concurrent publishes cannot overshoot maxPending.
    this.#added++
    try {
      await this.#options.store.add({ ...message, dueAt })
    } catch (err) {
      this.#added--
      throw err
    }
    this.#accepted++
    this.#wake(dueAt)
  }

  /** Tells it that `count` messages due at `dueAt` were written by someone else (a schedule's tick). */
  added (dueAt: number, count = 1): void {
    this.#added += count
    this.#wake(dueAt)
  }

  #wake (dueAt: number): void {
    if (this.#closed) return
    // A drain re-reads the earliest due time when it ends, perhaps before this
    // write landed: have it look again rather than leave this one without a timer.
    if (this.#draining !== null) this.#again = true
    else if (this.#nextDueAt === null || dueAt < this.#nextDueAt) this.#armAt(dueAt)
  }

  stats (): DelayedStats {
    return {
      pending: this.#pending,
      accepted: this.#accepted,
      fired: this.#fired,
      refused: { ...this.#refused },
      nextDueAt: this.#nextDueAt === null ? null : new Date(this.#nextDueAt).toISOString(),
      lastLatenessMs: this.#lastLatenessMs
    }
  }

  /** Stops the timer and waits for a batch being published; what is left waits in the store. */
  async close (): Promise<void> {
    this.#closed = true
    this.#timer?.cancel()
    this.#timer = null
    await this.#counting
    await this.#draining
    await this.#options.store.idle()
  }

  #armAt (at: number): void {
    this.#timer?.cancel()
    this.#nextDueAt = at
    this.#timer = this.#options.clock.setTimer(() => { this.#timer = null; this.#drain() }, at)
  }

  async #rearm (): Promise<void> {
    const earliest = await this.#options.store.earliest()
    if (this.#closed) return
    if (earliest === null) {
      this.#nextDueAt = null
      this.#timer?.cancel()
      this.#timer = null
    } else {
      this.#armAt(earliest)
    }
  }

  #drain (): void {
    if (this.#draining !== null) {
      this.#again = true
      return
    }
    this.#draining = this.#drainLoop()
      .catch((err: unknown) => {
        // The messages stay stored; try again shortly rather than give up on them.
        this.#options.logger.error({ err }, 'could not publish delayed messages; retrying in 1 s')
        if (!this.#closed) this.#armAt(this.#options.clock.now() + 1000)
      })
      .finally(() => {
        this.#draining = null
        if (this.#again && !this.#closed) {
          this.#again = false
          this.#drain()
        }
      })
  }

  async #drainLoop (): Promise<void> {
    const { store, clock, batchSize, publish } = this.#options
    for (;;) {
      if (this.#closed) return
      const now = clock.now()
      const batch = await store.due(now, batchSize)
      if (batch.length === 0) break
      // Started in due order; Aedes keeps that order per subscriber.
      await Promise.all(batch.map((message) => publish(message)))
      await store.remove(batch.map((m) => m.key))
      this.#fired += batch.length
      const last = batch[batch.length - 1]
      if (last !== undefined) this.#lastLatenessMs = Math.max(0, clock.now() - last.dueAt)
      if (batch.length < batchSize) break
      // Let connections and other publishes through between batches.
      await new Promise<void>((resolve) => setImmediate(resolve))
    }
    await this.#rearm()
  }
}
