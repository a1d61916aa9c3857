import { performance } from 'node:perf_hooks'
import { persistenceWriteSeconds } from '../observability/fixed-histogram.js'
import type { BatchWriter, KeyValueStore, SublevelOp } from './store.js'

type Op = SublevelOp

interface Pending {
  ops: Op[]
  resolve: () => void
  reject: (err: unknown) => void
}

/**
 * Coalesces the writes issued within one turn of the event loop into a single
 * LevelDB batch, and runs batches one after another.
 *
 * Why: a QoS 1 publish costs several writes (journal, queue entries, journal
 * delete); one batch per tick instead of one write each is what keeps LevelDB
 * from being the bottleneck. Running batches in series also means writes land
 * in the order they were issued, which the queue logic relies on (a put and a
 * later delete of the same key never swap). Each caller's promise settles only
 * once its batch is written, so nothing is acknowledged before it is stored.
 *
 * Each op names its sublevel and the batch goes to the keyspace's root
 * writer, so one batch can span the sublevels of an owner (and of another
 * owner, where two must change together: a schedule's tick and its delayed
 * message, broker/scheduler/schedule-store.ts), atomically.
 */
export class WriteBatcher {
  readonly #db: BatchWriter
  #queue: Pending[] = []
  // Values written but not yet in the store (null: a pending delete), per
  // sublevel, so reads see their own writes before the batch lands.
  readonly #unwritten = new Map<KeyValueStore, Map<string, Buffer | null>>()
  #flushing: Promise<void> | null = null
  #scheduled = false

  constructor (db: BatchWriter) {
    this.#db = db
  }

  write (ops: Op[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve()
    for (const op of ops) {
      let unwritten = this.#unwritten.get(op.sublevel)
      if (unwritten === undefined) {
        unwritten = new Map()
        this.#unwritten.set(op.sublevel, unwritten)
      }
      unwritten.set(op.key, op.type === 'put' ? op.value : null)
    }
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ ops, resolve, reject })
      this.#schedule()
    })
  }

  /** The value of a write not yet stored: a Buffer, null for a delete, undefined if none. */
  pendingValue (sublevel: KeyValueStore, key: string): Buffer | null | undefined {
    return this.#unwritten.get(sublevel)?.get(key)
  }

  /** Resolves once every write issued before the call has been written. */
  async idle (): Promise<void> {
    while (this.#queue.length > 0 || this.#flushing !== null || this.#scheduled) {
      if (this.#flushing !== null) {
        await this.#flushing
      } else {
        await new Promise<void>((resolve) => setImmediate(resolve))
      }
    }
  }

  #schedule (): void {
    if (this.#scheduled || this.#flushing !== null) return
    this.#scheduled = true
    setImmediate(() => {
      this.#scheduled = false
      this.#flushing = this.#flush().finally(() => {
        this.#flushing = null
        if (this.#queue.length > 0) this.#schedule()
      })
    })
  }

  async #flush (): Promise<void> {
    const pending = this.#queue
    this.#queue = []
    const ops: Op[] = []
    for (const p of pending) ops.push(...p.ops)
    try {
      const started = performance.now()
      await this.#db.batch(ops)
      // One observation per batch (docs/operations.md#metrics): what a write waits for, not per op.
      persistenceWriteSeconds.observe((performance.now() - started) / 1000)
      for (const op of ops) {
        const value = op.type === 'put' ? op.value : null
        // Forget it only if no later write to the same key is waiting.
        const unwritten = this.#unwritten.get(op.sublevel)
        if (unwritten?.get(op.key) === value) unwritten.delete(op.key)
      }
      for (const p of pending) p.resolve()
    } catch (err) {
      for (const p of pending) p.reject(err)
    }
  }
}
