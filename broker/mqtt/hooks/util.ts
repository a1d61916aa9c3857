import type { Client } from 'aedes'
import type { ClientInfo } from '../../types/mqtt.js'

export function toBuffer (payload: string | Buffer): Buffer {
  return Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
}

/**
 * What the access policy is told about each connection, made once per
 * connection (it is read on every PUBLISH); keyed by the Aedes client, so it
 * goes with the connection. The user it was accepted as is recorded by the
 * adapter after authenticate.
 */
const infos = new WeakMap<Client, ClientInfo>()

/** Records the user `client` was accepted as, for every later {@link clientInfo}. */
export function setUsername (client: Client, username: string): void {
  infos.set(client, Object.freeze({ id: client.id, clean: client.clean, username }))
}

/** What the access policy is told about a client. */
export function clientInfo (client: Client): ClientInfo {
  let info = infos.get(client)
  if (info === undefined) {
    info = Object.freeze({ id: client.id, clean: client.clean })
    infos.set(client, info)
  }
  return info
}
