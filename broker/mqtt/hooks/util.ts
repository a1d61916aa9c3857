import type { Client } from 'aedes'
import { peerOf } from '../../listeners/peer.js'
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
  infos.set(client, Object.freeze({ ...clientInfo(client), username }))
}

/** What the access policy is told about a client. */
export function clientInfo (client: Client): ClientInfo {
  let info = infos.get(client)
  if (info === undefined) {
    const certificateCN = peerOf(client.conn)?.certificateCN
    info = Object.freeze(certificateCN === undefined ? { id: client.id, clean: client.clean } : { id: client.id, clean: client.clean, certificateCN })
    infos.set(client, info)
  }
  return info
}
