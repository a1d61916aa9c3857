import type { Client } from 'aedes'
import mqttPacket from 'mqtt-packet'
import type { OutgoingPublish } from '../../types/mqtt.js'

/*
 * Patch of Aedes internals (tripwires: test/aedes-tripwires.test.ts,
 * "packet ids and raw writes"). Aedes 1.2 keeps a client's next packet
 * identifier in `client._nextId` (lib/client.js) and takes it in
 * lib/qos-packet.js; `connected`/`closed` are its connection state and
 * `conn` the socket lib/write.js writes to.
 */
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
