import { decodePacket, encodePacket } from '../persistence/packet-codec.js'
import type { BatchWriter, KeyValueStore, SublevelOp } from '../persistence/store.js'
import { WriteBatcher } from '../persistence/write-batcher.js'

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

/**
 * Where delayed messages wait (broker/scheduler/delayed-messages.ts). Each
 * write resolves once it is durable. Conformance suite:
 * test/conformance/delayed-store.suite.ts.
 */
export interface DelayedStore {
  /** Stores `message`; resolves once it is durable. */
  add (message: DelayedMessage): Promise<void>
  /** Up to `limit` messages due at or before `now`, earliest first; equal due times in arrival order. */
  due (now: number, limit: number): Promise<StoredDelayed[]>
  /** Due time of the earliest message, or null when none waits. */
  earliest (): Promise<number | null>
  remove (keys: string[]): Promise<void>
  /** How many wait. */
  count (): Promise<number>
  /** Resolves once every write issued so far is durable. */
  idle (): Promise<void>
}

// Keys, in the `delayed` sublevel (docs/keyspace.md):
//   {dueAt}:{boot}:{seq}   a message to publish at dueAt (ms, zero-padded)
// Sorted by due time, so "what is due" is one range read from the start and
// the earliest due time is the first key: neither needs the backlog in memory.
// {boot} (the start time of the broker that stored it) keeps keys unique and
// in arrival order across restarts without scanning for the last sequence.
const dueAtOf = (key: string): number => Number(key.slice(0, 16))
const pad = (n: number): string => Math.max(0, Math.floor(n)).toString().padStart(16, '0')

// Two stores started in the same millisecond in one process (a restart in a
// test, on memory-level) would otherwise share a {boot} and reuse keys.
let lastBoot = 0
function nextBoot (): number {
  lastBoot = Math.max(Date.now(), lastBoot + 1)
  return lastBoot
}

export class LevelDelayedStore implements DelayedStore {
  readonly #sublevel: KeyValueStore
  readonly #writes: WriteBatcher
  readonly #boot = pad(nextBoot())
  #seq = 0

  constructor (sublevel: KeyValueStore, writer: BatchWriter) {
    this.#sublevel = sublevel
    this.#writes = new WriteBatcher(writer)
  }

  /** The write that stores `message`; batch it with others that must land together (a schedule's tick). */
  putOp (message: DelayedMessage): SublevelOp {
    const key = `${pad(message.dueAt)}:${this.#boot}:${pad(++this.#seq)}`
    const value = encodePacket({
      cmd: 'publish',
      topic: message.topic,
      payload: message.payload,
      qos: message.qos,
      retain: message.retain,
      dup: false,
      ...(message.clientId === null ? {} : { clientId: message.clientId })
    })
    return { type: 'put', sublevel: this.#sublevel, key, value }
  }

  async add (message: DelayedMessage): Promise<void> {
    await this.#writes.write([this.putOp(message)])
  }

  /**
   * Writes `ops` in one atomic batch, in order with this store's other
   * writes. Ops may name other sublevels of the same keyspace: the
   * scheduler's tick record goes with its messages (schedule-store.ts).
   */
  async writeOps (ops: SublevelOp[]): Promise<void> {
    await this.#writes.write(ops)
  }

  async due (now: number, limit: number): Promise<StoredDelayed[]> {
    const out: StoredDelayed[] = []
    for await (const [key, value] of this.#sublevel.iterator({ lt: pad(now + 1), limit })) {
      if (this.#writes.pendingValue(this.#sublevel, key) === null) continue // removal not yet written
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

  async earliest (): Promise<number | null> {
    await this.#writes.idle()
    for await (const key of this.#sublevel.keys({ limit: 1 })) {
      return dueAtOf(key)
    }
    return null
  }

  async remove (keys: string[]): Promise<void> {
    await this.#writes.write(keys.map((key): SublevelOp => ({ type: 'del', sublevel: this.#sublevel, key })))
  }

  /** One key scan, run after start (about 200-300 ms for 100,000 here; docs/benchmarks.md). */
  async count (): Promise<number> {
    let n = 0
    for await (const _key of this.#sublevel.keys()) n++
    return n
  }

  idle (): Promise<void> {
    return this.#writes.idle()
  }
}
