import type { Logger } from 'pino'
import type { BatchWriter, KeyValueStore, SublevelOp } from '../persistence/store.js'
import { WriteBatcher } from '../persistence/write-batcher.js'

/** What an idempotency key maps to: the task it first submitted, until when. */
export interface IdempotencyEntry {
  taskId: string
  /** Epoch ms after which the key no longer makes a submission a duplicate. */
  expiresAt: number
}

type Entry = IdempotencyEntry

/**
 * Where idempotency keys are kept across restarts. Ids are `{type}/{key}`.
 * Conformance suite: test/conformance/idempotency-store.suite.ts.
 */
export interface IdempotencyStore {
  /** Every stored id with its entry, or null where the stored value cannot be read. */
  load (): Promise<Array<{ id: string, entry: IdempotencyEntry | null }>>
  /** Stores `entry` under `id`; resolves once it is durable. */
  put (id: string, entry: IdempotencyEntry): Promise<void>
  delete (ids: string[]): Promise<void>
  /** Resolves once every write issued so far is durable. */
  flush (): Promise<void>
}

/** Keys in the `idempotency-keys` sublevel: `{type}/{key}` → `{ taskId, expiresAt }` as JSON (docs/keyspace.md). */
export class LevelIdempotencyStore implements IdempotencyStore {
  readonly #sublevel: KeyValueStore
  readonly #writes: WriteBatcher

  constructor (sublevel: KeyValueStore, writer: BatchWriter) {
    this.#sublevel = sublevel
    this.#writes = new WriteBatcher(writer)
  }

  async load (): Promise<Array<{ id: string, entry: IdempotencyEntry | null }>> {
    await this.#writes.idle()
    const out: Array<{ id: string, entry: IdempotencyEntry | null }> = []
    for await (const [id, value] of this.#sublevel.iterator()) out.push({ id, entry: decode(value) })
    return out
  }

  async put (id: string, entry: IdempotencyEntry): Promise<void> {
    const stored: IdempotencyEntry = { taskId: entry.taskId, expiresAt: entry.expiresAt }
    await this.#writes.write([{ type: 'put', sublevel: this.#sublevel, key: id, value: Buffer.from(JSON.stringify(stored)) }])
  }

  async delete (ids: string[]): Promise<void> {
    await this.#writes.write(ids.map((id): SublevelOp => ({ type: 'del', sublevel: this.#sublevel, key: id })))
  }

  async flush (): Promise<void> {
    await this.#writes.idle()
  }
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
  readonly #store: IdempotencyStore
  readonly #windowMs: number
  readonly #maxKeys: number
  readonly #logger: Logger
  #evicted = 0

  private constructor (store: IdempotencyStore, windowMs: number, maxKeys: number, logger: Logger) {
    this.#store = store
    this.#windowMs = windowMs
    this.#maxKeys = maxKeys
    this.#logger = logger
  }

  /** Loads the unexpired keys from `store` and deletes the expired ones. */
  static async open (store: IdempotencyStore, windowMs: number, maxKeys: number, logger: Logger): Promise<IdempotencyKeys> {
    const keys = new IdempotencyKeys(store, windowMs, maxKeys, logger)
    const now = Date.now()
    const live: Array<[string, Entry]> = []
    const stale: string[] = []
    for (const { id, entry } of await store.load()) {
      // A value that cannot be read is dropped like an expired one.
      if (entry === null || entry.expiresAt <= now) stale.push(id)
      else live.push([id, entry])
    }
    // Stored in key order; the Map wants expiry order.
    live.sort((a, b) => a[1].expiresAt - b[1].expiresAt)
    for (const [key, entry] of live) keys.#entries.set(key, entry)
    stale.push(...keys.#trim(now))
    if (stale.length > 0) await store.delete(stale)
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
    if (trimmed.length > 0) this.#delete(trimmed)
    let committed = false
    const release = (): void => {
      if (this.#entries.get(id) !== entry) return
      this.#entries.delete(id)
      if (committed) this.#delete([id])
    }
    const commit = async (): Promise<void> => {
      try {
        await this.#store.put(id, entry)
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
    await this.#store.flush()
  }

  /** Deletes nobody waits for: a failure is logged, and the key is dropped at a later start once expired. */
  #delete (ids: string[]): void {
    this.#store.delete(ids).catch((err: unknown) => {
      this.#logger.error({ err }, 'could not delete idempotency keys')
    })
  }

  /** Drops expired keys from the front, then the oldest beyond the bound; returns their ids. */
  #trim (now: number): string[] {
    const ids: string[] = []
    for (const [id, entry] of this.#entries) {
      const over = this.#entries.size > this.#maxKeys
      if (entry.expiresAt > now && !over) break
      if (over && entry.expiresAt > now) this.#evicted++
      this.#entries.delete(id)
      ids.push(id)
    }
    return ids
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
