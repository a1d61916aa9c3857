import { Readable } from 'node:stream'
import { decodePacket, encodePacket, encodeQueuedPacket, type StoredPacket } from './packet-codec.js'
import { enc, incomingKey, readValue, type ClientRef } from './persistence-keys.js'
import { prefixRange, type KeyValueStore, type SublevelOp } from './store.js'
import type { WriteBatcher } from './write-batcher.js'

/**
 * Incoming QoS 2 packets awaiting PUBREL (sublevel `incoming`, key
 * `{clientId}:{messageId}`) and wills (sublevel `wills`, key `{clientId}`):
 * read from the store when asked, nothing kept in memory.
 */
export class SessionRecords {
  readonly #incoming: KeyValueStore
  readonly #wills: KeyValueStore
  readonly #writes: WriteBatcher

  constructor (incoming: KeyValueStore, wills: KeyValueStore, writes: WriteBatcher) {
    this.#incoming = incoming
    this.#wills = wills
    this.#writes = writes
  }

  // ---- incoming QoS 2 -------------------------------------------------------

  async storeIncoming (client: ClientRef, packet: StoredPacket): Promise<void> {
    await this.#writes.write([{ type: 'put', sublevel: this.#incoming, key: incomingKey(client.id, packet.messageId), value: encodeQueuedPacket(packet) }])
  }

  async getIncoming (client: ClientRef, packet: { messageId?: number }): Promise<StoredPacket> {
    const value = await readValue(this.#writes, this.#incoming, incomingKey(client.id, packet.messageId))
    if (value === undefined) throw new Error('no such packet')
    return decodePacket(value)
  }

  async delIncoming (client: ClientRef, packet: { messageId?: number }): Promise<void> {
    await this.#writes.write([{ type: 'del', sublevel: this.#incoming, key: incomingKey(client.id, packet.messageId) }])
  }

  async cleanIncoming (client: ClientRef): Promise<void> {
    const ops: SublevelOp[] = []
    const sublevel = this.#incoming
    await this.#writes.idle()
    for await (const key of sublevel.keys(prefixRange(`${enc(client.id)}:`))) {
      ops.push({ type: 'del', sublevel, key })
    }
    await this.#writes.write(ops)
  }

  // ---- wills ----------------------------------------------------------------

  async putWill (client: ClientRef, packet: StoredPacket, brokerId: string | null): Promise<void> {
    packet.brokerId = brokerId
    packet.clientId = client.id
    await this.#writes.write([{ type: 'put', sublevel: this.#wills, key: enc(client.id), value: encodePacket(packet) }])
  }

  async getWill (client: ClientRef): Promise<StoredPacket | undefined> {
    const value = await readValue(this.#writes, this.#wills, enc(client.id))
    return value === undefined ? undefined : decodePacket(value)
  }

  async delWill (client: ClientRef): Promise<StoredPacket | undefined> {
    const will = await this.getWill(client)
    if (will === undefined) return undefined
    await this.#writes.write([{ type: 'del', sublevel: this.#wills, key: enc(client.id) }])
    return will
  }

  streamWill (brokers: Record<string, unknown>): Readable {
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
