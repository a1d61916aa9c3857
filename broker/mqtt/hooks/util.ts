import type { Client } from 'aedes'
import { peerOf } from '../../listeners/peer.js'
import type { ClientInfo } from '../../types/mqtt.js'

export function toBuffer (payload: string | Buffer): Buffer {
  return Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
}

/**
 * What the access policy is told about each connection, made once per
 * connection (it is read on every PUBLISH); kept with the Aedes client, so it
 * goes with the connection: a property of its own under a module-private
 * symbol, as a WeakMap entry cost about 33 bytes per idle connection
 * (docs/benchmarks.md "Idle connections"). The user it was accepted as is
 * recorded by the adapter after authenticate.
 */
const INFO = Symbol('fleetq.clientInfo')
type WithInfo = Client & { [INFO]?: ClientInfo }

/** Records the user `client` was accepted as, for every later {@link clientInfo}. */
export function setUsername (client: Client, username: string): void {
  (client as WithInfo)[INFO] = Object.freeze({ ...clientInfo(client), username })
}

/** What the access policy is told about a client. */
export function clientInfo (client: Client): ClientInfo {
  let info = (client as WithInfo)[INFO]
  if (info === undefined) {
    const certificateCN = peerOf(client.conn)?.certificateCN
    info = Object.freeze(certificateCN === undefined ? { id: client.id, clean: client.clean } : { id: client.id, clean: client.clean, certificateCN })
    ;(client as WithInfo)[INFO] = info
  }
  return info
}
