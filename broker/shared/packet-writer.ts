import type { Client } from 'aedes'
import mqttPacket from 'mqtt-packet'

type AedesClientInternals = Client & { _nextId: number, connected: boolean, closed: boolean }

/**
 * Takes the next packet identifier from Aedes's own per-client counter (as
 * lib/qos-packet.js does), so group deliveries and Aedes's deliveries to the
 * same client do not pick the same identifier [MQTT-2.3.1-2].
 */
export function nextMessageId (client: Client): number {
  const c = client as AedesClientInternals
  const id = c._nextId
  c._nextId = id >= 65535 ? 1 : id + 1
  return id
}

export function isWritable (client: Client): boolean {
  const c = client as AedesClientInternals
  return c.connected && !c.closed
}

export interface OutgoingPublish {
  topic: string
  payload: Buffer
  qos: 0 | 1
  messageId?: number
  dup: boolean
}

/**
 * Writes a PUBLISH straight to a client's socket, as Aedes's lib/write.js
 * does. Group deliveries bypass Aedes's per-client queue on purpose: the
 * group's queue owns the message until the member acknowledges it.
 * Socket back-pressure is bounded by the member's prefetch window.
 */
export function writePublish (client: Client, packet: OutgoingPublish): boolean {
  if (!isWritable(client)) return false
  try {
    mqttPacket.writeToStream({ cmd: 'publish', retain: false, ...packet }, client.conn)
    return true
  } catch {
    return false
  }
}
