import type { Client } from 'aedes'
import type { Connection, OutgoingPublish } from '../../types/mqtt.js'
import { isWritable, nextMessageId, writePublish } from './packet-ids.js'

/** A {@link Connection} over one Aedes client object. */
class AedesConnection implements Connection {
  readonly #client: Client
  readonly #mayReceive: ReceiveCheck
  readonly #sent: SentCounter

  constructor (client: Client, mayReceive: ReceiveCheck, sent: SentCounter) {
    this.#client = client
    this.#mayReceive = mayReceive
    this.#sent = sent
  }

  get id (): string {
    return this.#client.id
  }

  get writable (): boolean {
    return isWritable(this.#client)
  }

  nextPacketId (): number {
    return nextMessageId(this.#client)
  }

  writePublish (packet: OutgoingPublish): boolean {
    const written = writePublish(this.#client, packet)
    if (written) this.#sent(packet.payload.length, packet.qos)
    return written
  }

  mayReceive (topic: string): boolean {
    return this.#mayReceive(this.#client, topic)
  }
}

/** Hears of each PUBLISH a service writes (its payload bytes and QoS), for the traffic counters. */
export type SentCounter = (bytes: number, qos: 0 | 1) => void

/** The access policy's answer to "may this client receive a message on this topic". */
export type ReceiveCheck = (client: Client, topic: string) => boolean

/**
 * One {@link Connection} per Aedes client object, for as long as that object
 * lives: services key their maps by it (group membership, in-flight leases).
 */
export class Connections {
  readonly #byClient = new WeakMap<object, Connection>()
  readonly #mayReceive: ReceiveCheck
  readonly #sent: SentCounter

  /** `sent` hears of each PUBLISH a service writes, for the traffic counters. */
  constructor (mayReceive: ReceiveCheck, sent: SentCounter = () => undefined) {
    this.#mayReceive = mayReceive
    this.#sent = sent
  }

  of (client: Client): Connection {
    let connection = this.#byClient.get(client)
    if (connection === undefined) {
      connection = new AedesConnection(client, this.#mayReceive, this.#sent)
      this.#byClient.set(client, connection)
    }
    return connection
  }

  /** The connection made for `client` earlier, if any (a PUBACK from a client no service knows). */
  known (client: object): Connection | undefined {
    return this.#byClient.get(client)
  }
}
