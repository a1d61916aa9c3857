import type { Client } from 'aedes'
import type { ClientInfo } from '../../types/mqtt.js'

export function toBuffer (payload: string | Buffer): Buffer {
  return Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
}

/** What the access policy is told about a client. */
export function clientInfo (client: Client): ClientInfo {
  return { id: client.id, clean: client.clean }
}
