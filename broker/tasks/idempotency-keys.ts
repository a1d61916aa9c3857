import type { Logger } from 'pino'
import { prefixRange, type KeyValueStore, type StoreOp } from '../persistence/store.js'
import { WriteBatcher } from '../persistence/write-batcher.js'

const PREFIX = 'ik:'

interface Entry {
  taskId: string
  expiresAt: number
}

export type Claim =
  | { duplicate: true, taskId: string }
  | {
    duplicate: false
    /** Stores the key; if that fails the claim is released and the promise rejects. */
    commit: () => Promise<void>
    /** Forgets the claim (the publish was refused after all), so the publisher's retry is not a duplicate. */
    release: () => void
  }

/**
 * Idempotency keys seen within the window: in memory for a synchronous check
 * (authorizePublish must decide before the PUBACK, and two copies of one
 * submission can arrive in the same tick), and in the store so a restart
 * does not forget them.
 *
 * Every key lives for the same window, so the Map's insertion order is also
 * expiry order: expired keys are dropped from the front when new ones come,
 * with no timer to stop, and the size bound evicts the oldest first.
 */
export class IdempotencyKeys {
  readonly #entries = new Map<string, Entry>()
  readonly #writes: WriteBatcher
  readonly #windowMs: number
  readonly #maxKeys: number
  readonly #logger: Logger
  #evicted = 0

  private constructor (store: KeyValueStore, windowMs: number, maxKeys: number, logger: Logger) {
    this.#writes = new WriteBatcher(store)
    this.#windowMs = windowMs
    this.#maxKeys = maxKeys
    this.#logger = logger
  }

  /** Loads the unexpired keys from `store` and deletes the expired ones. */
  static async open (store: KeyValueStore, windowMs: number, maxKeys: number, logger: Logger): Promise<IdempotencyKeys> {
    const keys = new IdempotencyKeys(store, windowMs, maxKeys, logger)
    const now = Date.now()
    const live: Array<[string, Entry]> = []
    const stale: StoreOp[] = []
    for await (const [key, value] of store.iterator(prefixRange(PREFIX))) {
      const entry = decode(value)
      if (entry === null || entry.expiresAt <= now) stale.push({ type: 'del', key })
      else live.push([key.slice(PREFIX.length), entry])
    }
    // Stored in key order; the Map wants expiry order.
    live.sort((a, b) => a[1].expiresAt - b[1].expiresAt)
    for (const [key, entry] of live) keys.#entries.set(key, entry)
    stale.push(...keys.#trim(now))
    await keys.#writes.write(stale)
    return keys
  }

  get size (): number {
    return this.#entries.size
  }

  /** Keys dropped before their window ended to stay within the size bound. */
  get evicted (): number {
    return this.#evicted
  }

  /**
   * Claims `key` of task type `type` for task `taskId`, in memory at once (a
   * second copy in the same tick is a duplicate), unless it was claimed within
   * the window: then it is a duplicate of that task. The key is stored only on
   * `commit()`, which the broker calls once the message itself is journaled:
   * a crash between the two then repeats a task instead of losing it.
   */
  claim (type: string, key: string, taskId: string): Claim {
    const now = Date.now()
    // A type never contains '/' (it is one topic level), so this is unambiguous.
    const id = `${type}/${key}`
    const existing = this.#entries.get(id)
    if (existing !== undefined && existing.expiresAt > now) return { duplicate: true, taskId: existing.taskId }

    const entry: Entry = { taskId, expiresAt: now + this.#windowMs }
    // Delete first so a renewed key moves to the back (expiry order).
    this.#entries.delete(id)
    this.#entries.set(id, entry)
    const trimmed = this.#trim(now)
    if (trimmed.length > 0) this.#write(trimmed)
    let committed = false
    const release = (): void => {
      if (this.#entries.get(id) !== entry) return
      this.#entries.delete(id)
      if (committed) this.#write([{ type: 'del', key: PREFIX + id }])
    }
    const commit = async (): Promise<void> => {
      try {
        await this.#writes.write([{ type: 'put', key: PREFIX + id, value: Buffer.from(JSON.stringify(entry)) }])
        committed = true
      } catch (err) {
        release()
        this.#logger.error({ err, type, idempotencyKey: key }, 'could not store an idempotency key')
        throw err
      }
    }
    return { duplicate: false, commit, release }
  }

  /** Resolves once every key recorded so far is stored. */
  async flush (): Promise<void> {
    await this.#writes.idle()
  }

  /** Deletes nobody waits for: a failure is logged, and the key is dropped at a later start once expired. */
  #write (ops: StoreOp[]): void {
    this.#writes.write(ops).catch((err: unknown) => {
      this.#logger.error({ err }, 'could not delete idempotency keys')
    })
  }

  /** Drops expired keys from the front, then the oldest beyond the bound; returns their deletes. */
  #trim (now: number): StoreOp[] {
    const ops: StoreOp[] = []
    for (const [id, entry] of this.#entries) {
      const over = this.#entries.size > this.#maxKeys
      if (entry.expiresAt > now && !over) break
      if (over && entry.expiresAt > now) this.#evicted++
      this.#entries.delete(id)
      ops.push({ type: 'del', key: PREFIX + id })
    }
    return ops
  }
}

function decode (value: Buffer): Entry | null {
  try {
    const parsed = JSON.parse(value.toString('utf8')) as Partial<Entry>
    if (typeof parsed.taskId === 'string' && typeof parsed.expiresAt === 'number') return { taskId: parsed.taskId, expiresAt: parsed.expiresAt }
  } catch {
    // A value we cannot read is dropped like an expired one.
  }
  return null
}
