import type { Client } from 'aedes'
import type { Connection, OutgoingPublish } from '../../types/mqtt.js'
import { isWritable, nextMessageId, writePublish } from './packet-ids.js'

/** A {@link Connection} over one Aedes client object. */
class AedesConnection implements Connection {
  readonly #client: Client

  constructor (client: Client) {
    this.#client = client
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
    return writePublish(this.#client, packet)
  }
}

/**
 * One {@link Connection} per Aedes client object, for as long as that object
 * lives: services key their maps by it (group membership, in-flight leases).
 */
export class Connections {
  readonly #byClient = new WeakMap<object, Connection>()

  of (client: Client): Connection {
    let connection = this.#byClient.get(client)
    if (connection === undefined) {
      connection = new AedesConnection(client)
      this.#byClient.set(client, connection)
    }
    return connection
  }

  /** The connection made for `client` earlier, if any (a PUBACK from a client no service knows). */
  known (client: object): Connection | undefined {
    return this.#byClient.get(client)
  }
}
