import { performance } from 'node:perf_hooks'
import { persistenceWriteSeconds } from '../observability/fixed-histogram.js'
import type { BatchWriter, KeyValueStore, SublevelOp } from './store.js'

type Op = SublevelOp

/**
 * A put whose value is made when its batch is written, not when it is
 * queued: a record that may still change before then (a group message's
 * delivery count, broker/shared/level-group-store.ts) is encoded once, as it
 * stands at the write. Not seen by {@link WriteBatcher.pendingValue}.
 */
export interface LazyPut {
  type: 'put'
  sublevel: SublevelOp['sublevel']
  key: string
  encode: () => Buffer
}

export type BatcherOp = Op | LazyPut

export interface WriteOptions {
  /**
   * Leave these ops out of {@link WriteBatcher.pendingValue}: for stores that
   * never read their own keys back before the write lands (the journal, the
   * group queues), which saves a map update per op.
   */
  untracked?: boolean
}

/**
 * The writes of one turn: their ops in issue order, and the one promise
 * every caller of that turn gets. A promise and a record per write were a
 * visible part of the broker's CPU per task (docs/benchmarks.md).
 */
interface Pending {
  ops: BatcherOp[]
  done: Promise<void>
  resolve: () => void
  reject: (err: unknown) => void
}

/** The batcher of each writer: stores built on one keyspace share its batch chain (see {@link WriteBatcher.for}). */
const byWriter = new WeakMap<BatchWriter, WriteBatcher>()

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
  /** The next batch, collecting this turn's writes; null when none waits. */
  #next: Pending | null = null
  // Values written but not yet in the store (null: a pending delete), per
  // sublevel, so reads see their own writes before the batch lands.
  readonly #unwritten = new Map<KeyValueStore, Map<string, Buffer | null>>()
  #flushing: Promise<void> | null = null
  #scheduled = false

  constructor (db: BatchWriter) {
    this.#db = db
  }

  /**
   * The one shared batcher of `db`, made on the first call: every store
   * that asks for it, in whatever order they are built, writes through it.
   * (`new WriteBatcher(db)` makes a private chain instead.) Group commit: the publish journal, the Aedes persistence and
   * the shared groups' queues then land in one LevelDB batch per event-loop
   * turn instead of one batch chain each (a `$share` QoS 1 message writes
   * to both the journal and its group, docs/shared-subscriptions.md).
   */
  static for (db: BatchWriter): WriteBatcher {
    let batcher = byWriter.get(db)
    if (batcher === undefined) {
      batcher = new WriteBatcher(db)
      byWriter.set(db, batcher)
    }
    return batcher
  }

  write (ops: BatcherOp[], options?: WriteOptions): Promise<void> {
    if (ops.length === 0) return Promise.resolve()
    if (options?.untracked !== true) {
      for (const op of ops) {
        if ('encode' in op) continue
        let unwritten = this.#unwritten.get(op.sublevel)
        if (unwritten === undefined) {
          unwritten = new Map()
          this.#unwritten.set(op.sublevel, unwritten)
        }
        unwritten.set(op.key, op.type === 'put' ? op.value : null)
      }
    }
    let next = this.#next
    if (next === null) {
      next = pendingBatch()
      this.#next = next
      this.#schedule()
    }
    for (const op of ops) next.ops.push(op)
    return next.done
  }

  /** The value of a write not yet stored: a Buffer, null for a delete, undefined if none. */
  pendingValue (sublevel: KeyValueStore, key: string): Buffer | null | undefined {
    return this.#unwritten.get(sublevel)?.get(key)
  }

  /** Resolves once every write issued before the call has been written. */
  async idle (): Promise<void> {
    while (this.#next !== null || this.#flushing !== null || this.#scheduled) {
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
        if (this.#next !== null) this.#schedule()
      })
    })
  }

  async #flush (): Promise<void> {
    const pending = this.#next
    this.#next = null
    if (pending === null) return
    // Lazy puts are encoded now, in place: the array is this batch's own.
    const ops = pending.ops as Op[]
    try {
      for (let i = 0; i < ops.length; i++) {
        const op = ops[i] as BatcherOp
        if ('encode' in op) ops[i] = { type: 'put', sublevel: op.sublevel, key: op.key, value: op.encode() }
      }
      const started = performance.now()
      await this.#db.batch(ops)
      // One observation per batch (docs/operations.md#metrics): what a write waits for, not per op.
      persistenceWriteSeconds.observe((performance.now() - started) / 1000)
      if (this.#unwritten.size > 0) {
        for (const op of ops) {
          // Forget it only if no later write to the same key is waiting.
          const unwritten = this.#unwritten.get(op.sublevel)
          if (unwritten === undefined || unwritten.size === 0) continue
          const value = op.type === 'put' ? op.value : null
          if (unwritten.get(op.key) === value) unwritten.delete(op.key)
        }
      }
      pending.resolve()
    } catch (err) {
      pending.reject(err)
    }
  }
}

function pendingBatch (): Pending {
  let resolve!: () => void
  let reject!: (err: unknown) => void
  const done = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { ops: [], done, resolve, reject }
}
