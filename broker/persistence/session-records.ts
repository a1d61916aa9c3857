import { Readable } from 'node:stream'
import { decodePacket, encodePacket, encodeQueuedPacket, type StoredPacket } from './packet-codec.js'
import { enc, incomingKey, readValue, type ClientRef } from './persistence-keys.js'
import type { KeyValueStore, SublevelOp } from './store.js'
import type { WriteBatcher } from './write-batcher.js'

/**
 * Incoming QoS 2 packets awaiting PUBREL (sublevel `incoming`, key
 * `{clientId}:{messageId}`) and wills (sublevel `wills`, key `{clientId}`).
 * The records themselves are read from the store when asked; only their keys
 * are kept in memory, loaded once and kept current on every write here (the
 * one writer of both sublevels, docs/keyspace.md). Aedes asks for both on
 * every CONNECT (it deletes any stored will, and a clean session's QoS 2
 * records) and again when the connection closes: for the common client that
 * has none, the keys answer without a LevelDB read or key scan, which were a
 * third of the broker's CPU per connect (docs/benchmarks.md "Idle
 * connections").
 */
export class SessionRecords {
  readonly #incoming: KeyValueStore
  readonly #wills: KeyValueStore
  readonly #writes: WriteBatcher
  /** Keys of the `incoming` sublevel by encoded client id. */
  readonly #incomingKeys = new Map<string, Set<string>>()
  /** Keys of the `wills` sublevel: the encoded ids of the clients with a stored will. */
  readonly #willKeys = new Set<string>()
  #loading: Promise<void> | null = null
  #loaded = false

  constructor (incoming: KeyValueStore, wills: KeyValueStore, writes: WriteBatcher) {
    this.#incoming = incoming
    this.#wills = wills
    this.#writes = writes
  }

  /**
   * Reads the keys of both sublevels (once; later calls share it). Every
   * other method waits for it, so calling it at start only spares the first
   * CONNECT the wait.
   */
  async load (): Promise<void> {
    this.#loading ??= this.#load()
    await this.#loading
  }

  async #load (): Promise<void> {
    await this.#writes.idle()
    for await (const key of this.#incoming.keys()) this.#addIncoming(key)
    for await (const key of this.#wills.keys()) this.#willKeys.add(key)
    this.#loaded = true
  }

  // ---- incoming QoS 2 -------------------------------------------------------

  async storeIncoming (client: ClientRef, packet: StoredPacket): Promise<void> {
    if (!this.#loaded) await this.load()
    const key = incomingKey(client.id, packet.messageId)
    // Recorded as the write is issued: a read after this call sees the
    // write (readValue looks at pending writes first).
    this.#addIncoming(key)
    await this.#writes.write([{ type: 'put', sublevel: this.#incoming, key, value: encodeQueuedPacket(packet) }])
  }

  async getIncoming (client: ClientRef, packet: { messageId?: number }): Promise<StoredPacket> {
    if (!this.#loaded) await this.load()
    const key = incomingKey(client.id, packet.messageId)
    const value = this.#incomingKeys.get(enc(client.id))?.has(key) === true ? await readValue(this.#writes, this.#incoming, key) : undefined
    if (value === undefined) throw new Error('no such packet')
    return decodePacket(value)
  }

  async delIncoming (client: ClientRef, packet: { messageId?: number }): Promise<void> {
    if (!this.#loaded) await this.load()
    const key = incomingKey(client.id, packet.messageId)
    this.#deleteIncoming(enc(client.id), key)
    await this.#writes.write([{ type: 'del', sublevel: this.#incoming, key }])
  }

  /** Deletes every incoming QoS 2 record of the client: by the keys known, no scan. */
  async cleanIncoming (client: ClientRef): Promise<void> {
    if (!this.#loaded) await this.load()
    const id = enc(client.id)
    const keys = this.#incomingKeys.get(id)
    if (keys === undefined) return
    this.#incomingKeys.delete(id)
    const sublevel = this.#incoming
    const ops: SublevelOp[] = []
    for (const key of keys) ops.push({ type: 'del', sublevel, key })
    await this.#writes.write(ops)
  }

  #addIncoming (key: string): void {
    // An encoded client id has no ':' (persistence-keys.ts).
    const id = key.slice(0, key.indexOf(':'))
    let keys = this.#incomingKeys.get(id)
    if (keys === undefined) {
      keys = new Set()
      this.#incomingKeys.set(id, keys)
    }
    keys.add(key)
  }

  #deleteIncoming (id: string, key: string): void {
    const keys = this.#incomingKeys.get(id)
    if (keys === undefined) return
    keys.delete(key)
    if (keys.size === 0) this.#incomingKeys.delete(id)
  }

  // ---- wills ----------------------------------------------------------------

  async putWill (client: ClientRef, packet: StoredPacket, brokerId: string | null): Promise<void> {
    if (!this.#loaded) await this.load()
    packet.brokerId = brokerId
    packet.clientId = client.id
    const key = enc(client.id)
    this.#willKeys.add(key)
    await this.#writes.write([{ type: 'put', sublevel: this.#wills, key, value: encodePacket(packet) }])
  }

  async getWill (client: ClientRef): Promise<StoredPacket | undefined> {
    if (!this.#loaded) await this.load()
    const key = enc(client.id)
    if (!this.#willKeys.has(key)) return undefined
    const value = await readValue(this.#writes, this.#wills, key)
    return value === undefined ? undefined : decodePacket(value)
  }

  async delWill (client: ClientRef): Promise<StoredPacket | undefined> {
    const will = await this.getWill(client)
    if (will === undefined) return undefined
    // After the read: the key set changes where the write is issued, in the
    // same order as the writes (a putWill meanwhile is deleted here, as it
    // always was).
    const key = enc(client.id)
    this.#willKeys.delete(key)
    await this.#writes.write([{ type: 'del', sublevel: this.#wills, key }])
    return will
  }

  streamWill (brokers: Record<string, unknown>): Readable {
    // Aedes asks every few heartbeats (wills of brokers gone): none stored, nothing to read.
    if (this.#loaded && this.#willKeys.size === 0) return Readable.from([])
    const wills = this.#wills
    const writes = this.#writes
    return Readable.from((async function * () {
      await writes.idle()
      for await (const [, value] of wills.iterator()) {
        const will = decodePacket(value)
        if (will.brokerId == null || brokers[will.brokerId] === undefined) yield will
      }
    })())
  }
}
