import { DROPPED_END, enc, firstKey, keyChunks, SEQ_DIGITS } from './persistence-keys.js'
import { STORED, type ClientQueue } from './queue-index.js'
import { prefixRange, type KeyValueStore } from './store.js'

/** Keys read per step when a queue is loaded: a step's strings are made in one go on the event loop. */
const LOAD_KEY_CHUNK = 5_000

/**
 * The queues a previous broker left in the store, loaded into the index
 * after start, not on it (docs/durability.md, "Restart time"): on start,
 * two seeks per client with a queue, its first key and its last (the highest
 * seq, so new messages number above every stored one): O(clients), not
 * O(messages). Then `warmUp` reads the queues' keys one after another, and
 * `load` reads one a caller needs first (a message for that client, its
 * reconnect), ahead.
 */
export class StoredQueues {
  readonly #outgoing: KeyValueStore
  readonly #queueOf: (clientId: string) => ClientQueue
  /** Clients whose stored queue is not loaded yet, with the load under way if any. */
  readonly #cold = new Map<string, Promise<void> | null>()
  /** The highest seq stored at start: entries above it were indexed when written. */
  #storedSeq = 0
  #stopped = false

  constructor (outgoing: KeyValueStore, queueOf: (clientId: string) => ClientQueue) {
    this.#outgoing = outgoing
    this.#queueOf = queueOf
  }

  /** Finds the clients with a stored queue; resolves with the highest seq stored. */
  async discover (): Promise<number> {
    let from = DROPPED_END
    for (;;) {
      const first = await firstKey(this.#outgoing, { gt: from })
      if (first === undefined) break
      // `{clientId}:{seq}`, seq 16 digits: no search for the ':'
      const encoded = first.slice(0, first.length - SEQ_DIGITS - 1)
      const last = await firstKey(this.#outgoing, { lt: `${encoded};`, reverse: true }) as string
      const seq = Number(last.slice(encoded.length + 1))
      if (seq > this.#storedSeq) this.#storedSeq = seq
      this.#cold.set(decodeURIComponent(encoded), null)
      from = `${encoded};` // past every key of this client, and of no other
    }
    return this.#storedSeq
  }

  /** Loads every queue not loaded yet, one after another; until then their sizes are missing from `queueSizes()`. */
  async warmUp (): Promise<void> {
    try {
      for (const clientId of [...this.#cold.keys()]) {
        if (this.#stopped) return
        await this.load(clientId)
      }
    } catch {
      // Left to load on demand (`load`), where the error reaches a caller.
    }
  }

  /** Stops `warmUp` and every load at their next step (the store is closing). */
  stop (): void {
    this.#stopped = true
  }

  /**
   * Reads the keys of a queue stored at start into its index, ahead of any
   * entry this broker added to it meanwhile (those have higher seqs). Null
   * when there is nothing to wait for, so the callers' fast path stays
   * synchronous.
   */
  load (clientId: string): Promise<void> | null {
    if (!this.#cold.has(clientId)) return null
    let loading = this.#cold.get(clientId) ?? null
    if (loading === null) {
      loading = this.#readKeys(clientId)
      // A failed read is tried again by the next caller; this one gets the error.
      loading.catch(() => { if (this.#cold.get(clientId) === loading) this.#cold.set(clientId, null) })
      this.#cold.set(clientId, loading)
    }
    return loading
  }

  async #readKeys (clientId: string): Promise<void> {
    const encoded = enc(clientId)
    const seqs: number[] = []
    for await (const keys of keyChunks(this.#outgoing, prefixRange(`${encoded}:`), LOAD_KEY_CHUNK)) {
      if (this.#stopped) throw new Error('the persistence is closing')
      for (const key of keys) {
        const seq = Number(key.slice(encoded.length + 1))
        // Above it: written by this broker, indexed already (or acknowledged).
        if (seq <= this.#storedSeq) seqs.push(seq)
      }
    }
    const queue = this.#queueOf(clientId)
    const added = [...queue.bySeq]
    queue.bySeq.clear()
    for (const seq of seqs) queue.bySeq.set(seq, STORED)
    for (const [seq, entry] of added) queue.bySeq.set(seq, entry)
    this.#cold.delete(clientId)
  }
}
