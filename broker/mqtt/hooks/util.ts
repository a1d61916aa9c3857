import type { Client } from 'aedes'
import type { ClientInfo } from '../../types/mqtt.js'

export function toBuffer (payload: string | Buffer): Buffer {
  return Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
}

/**
 * The user each connection was accepted as (the adapter records it after
 * authenticate); keyed by the Aedes client, so it goes with the connection.
 */
const usernames = new WeakMap<Client, string>()

/** Records the user `client` was accepted as, for every later {@link clientInfo}. */
export function setUsername (client: Client, username: string): void {
  usernames.set(client, username)
}

/** What the access policy is told about a client. */
export function clientInfo (client: Client): ClientInfo {
  const username = usernames.get(client)
  return username === undefined ? { id: client.id, clean: client.clean } : { id: client.id, clean: client.clean, username }
}
