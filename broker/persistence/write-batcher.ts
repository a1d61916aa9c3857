import type { KeyValueStore, StoreOp } from './store.js'

type Op = StoreOp

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
 */
export class WriteBatcher {
  readonly #db: KeyValueStore
  #queue: Pending[] = []
  // Values written but not yet in the store (null: a pending delete), so
  // reads see their own writes before the batch lands.
  readonly #unwritten = new Map<string, Buffer | null>()
  #flushing: Promise<void> | null = null
  #scheduled = false

  constructor (db: KeyValueStore) {
    this.#db = db
  }

  write (ops: Op[]): Promise<void> {
    if (ops.length === 0) return Promise.resolve()
    for (const op of ops) this.#unwritten.set(op.key, op.type === 'put' ? op.value : null)
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ ops, resolve, reject })
      this.#schedule()
    })
  }

  /** The value of a write not yet stored: a Buffer, null for a delete, undefined if none. */
  pendingValue (key: string): Buffer | null | undefined {
    return this.#unwritten.get(key)
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
      await this.#db.batch(ops)
      for (const op of ops) {
        const value = op.type === 'put' ? op.value : null
        // Forget it only if no later write to the same key is waiting.
        if (this.#unwritten.get(op.key) === value) this.#unwritten.delete(op.key)
      }
      for (const p of pending) p.resolve()
    } catch (err) {
      for (const p of pending) p.reject(err)
    }
  }
}
