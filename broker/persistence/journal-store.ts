import { decodePacket, encodePacket, type StoredPacket } from './packet-codec.js'
import type { KeyValueStore } from './store.js'
import type { WriteBatcher } from './write-batcher.js'

/** An entry of the publish journal: a packet acknowledged but not yet routed. */
export interface JournalEntry {
  key: string
  packet: StoredPacket
}

/**
 * Where the publish journal (broker/durability/publish-journal.ts) keeps the
 * QoS 1 messages it acknowledges before Aedes has stored them for their
 * subscribers. Conformance suite: test/conformance/journal-store.suite.ts.
 */
export interface JournalStore {
  /** Stores `packet`; resolves with its key once it is durable. */
  append (packet: StoredPacket): Promise<string>
  remove (key: string): Promise<void>
  /** Every entry, in the order they were appended (also across restarts). */
  entries (): Promise<JournalEntry[]>
}

const pad = (n: number): string => n.toString().padStart(16, '0')

/** The journal never reads an entry back before it is written (write-batcher.ts). */
const UNTRACKED = { untracked: true } as const

/**
 * The journal in its sublevel: key `{seq}`, zero-padded, so key order is
 * append order; the value is the packet. It shares the Aedes persistence's
 * write batcher (open-persistence.ts): the journal entry, the queue entries
 * and the journal delete of a QoS 1 publish then coalesce into the same
 * LevelDB batches instead of one batch each.
 */
export class LevelJournalStore implements JournalStore {
  readonly #sublevel: KeyValueStore
  readonly #writes: WriteBatcher
  /** The last sequence number in use, read from the store on first use. */
  #seq: Promise<number> | null = null
  #next = 0

  constructor (sublevel: KeyValueStore, writes: WriteBatcher) {
    this.#sublevel = sublevel
    this.#writes = writes
  }

  async append (packet: StoredPacket): Promise<string> {
    this.#seq ??= this.#lastSeq()
    const last = await this.#seq
    // After the await: appends waiting on the same read each take the next number.
    this.#next = Math.max(this.#next, last) + 1
    const key = pad(this.#next)
    await this.#writes.write([{ type: 'put', sublevel: this.#sublevel, key, value: encodePacket(packet) }], UNTRACKED)
    return key
  }

  async remove (key: string): Promise<void> {
    await this.#writes.write([{ type: 'del', sublevel: this.#sublevel, key }], UNTRACKED)
  }

  async entries (): Promise<JournalEntry[]> {
    await this.#writes.idle()
    const entries: JournalEntry[] = []
    for await (const [key, value] of this.#sublevel.iterator()) {
      entries.push({ key, packet: decodePacket(value) })
    }
    return entries
  }

  async #lastSeq (): Promise<number> {
    for await (const key of this.#sublevel.keys({ reverse: true, limit: 1 })) return Number(key)
    return 0
  }
}
