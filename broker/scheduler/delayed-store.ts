import { decodePacket, encodePacket } from '../persistence/packet-codec.js'
import { prefixRange, type KeyValueStore, type StoreOp } from '../persistence/store.js'
import { WriteBatcher } from '../persistence/write-batcher.js'

// Keys, in the broker's LevelDB:
//   dq:{dueAt}:{boot}:{seq}   a message to publish at dueAt (ms, zero-padded)
// Sorted by due time, so "what is due" is one range read from the start and
// the earliest due time is the first key: neither needs the backlog in memory.
// {boot} (the start time of the broker that stored it) keeps keys unique and
// in arrival order across restarts without scanning for the last sequence.
const PREFIX = 'dq:'
const dueAtOf = (key: string): number => Number(key.slice(PREFIX.length, PREFIX.length + 16))
const pad = (n: number): string => Math.max(0, Math.floor(n)).toString().padStart(16, '0')

/** A message waiting for its time. */
export interface DelayedMessage {
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  dueAt: number
  /** The publisher's client id, or null for the broker (schedules). */
  clientId: string | null
}

export interface StoredDelayed extends DelayedMessage {
  key: string
}

export class DelayedStore {
  readonly #store: KeyValueStore
  readonly #writes: WriteBatcher
  readonly #boot = pad(Date.now())
  #seq = 0

  constructor (store: KeyValueStore) {
    this.#store = store
    this.#writes = new WriteBatcher(store)
  }

  /** The write that stores `message`; batch it with others that must land together (a schedule's tick). */
  putOp (message: DelayedMessage): StoreOp {
    const key = `${PREFIX}${pad(message.dueAt)}:${this.#boot}:${pad(++this.#seq)}`
    const value = encodePacket({
      cmd: 'publish',
      topic: message.topic,
      payload: message.payload,
      qos: message.qos,
      retain: message.retain,
      dup: false,
      ...(message.clientId === null ? {} : { clientId: message.clientId })
    })
    return { type: 'put', key, value }
  }

  /** Resolves once `message` is on disk. */
  async add (message: DelayedMessage): Promise<void> {
    await this.#writes.write([this.putOp(message)])
  }

  async writeOps (ops: StoreOp[]): Promise<void> {
    await this.#writes.write(ops)
  }

  /** Up to `limit` messages due at or before `now`, earliest first. */
  async due (now: number, limit: number): Promise<StoredDelayed[]> {
    const out: StoredDelayed[] = []
    for await (const [key, value] of this.#store.iterator({ gte: PREFIX, lt: `${PREFIX}${pad(now + 1)}`, limit })) {
      if (this.#writes.pendingValue(key) === null) continue // removal not yet written
      const packet = decodePacket(value)
      out.push({
        key,
        topic: packet.topic,
        payload: packet.payload,
        qos: packet.qos,
        retain: packet.retain,
        dueAt: dueAtOf(key),
        clientId: packet.clientId ?? null
      })
    }
    return out
  }

  /** Due time of the earliest message, or null when none waits. */
  async earliest (): Promise<number | null> {
    await this.#writes.idle()
    for await (const key of this.#store.keys({ ...prefixRange(PREFIX), limit: 1 })) {
      return dueAtOf(key)
    }
    return null
  }

  async remove (keys: string[]): Promise<void> {
    await this.#writes.write(keys.map((key) => ({ type: 'del', key })))
  }

  /** How many wait: one key scan, run after start (about 200-300 ms for 100,000 here; docs/benchmarks.md). */
  async count (): Promise<number> {
    let n = 0
    for await (const _key of this.#store.keys(prefixRange(PREFIX))) n++
    return n
  }

  idle (): Promise<void> {
    return this.#writes.idle()
  }
}
