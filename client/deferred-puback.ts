import type { IPublishPacket, MqttClient } from 'mqtt'

/**
 * The one place the worker steps outside mqtt.js's acknowledgement path
 * (test/worker-transport.test.ts is its tripwire).
 *
 * mqtt.js 5 with MQTT 3.1.1 sends a QoS 1 PUBACK when `handleMessage` calls
 * back, and reads no further packet until then (`customHandleAcks` is MQTT 5
 * only; there is no `manualAcks`). Calling back at once with an error makes it
 * send no PUBACK and read on (handlers/publish.js: `if (err) return done(err)`,
 * and `done` only pulls the next packet): the worker then writes the PUBACK
 * itself once the task has settled.
 */
export function takeAcksOver (conn: MqttClient, onPublish: (packet: IPublishPacket) => void): void {
  conn.handleMessage = (packet, callback) => {
    callback(acknowledgedLater)
    onPublish(packet)
  }
}

const acknowledgedLater = new Error('acknowledged by the worker once the task settles')

/**
 * Writes PUBACK `messageId` on the current connection. Only while connected:
 * mqtt.js would queue a packet written offline and send it after the next
 * CONNACK, where the id names another message (or none).
 *
 * The four bytes are written directly [MQTT-3.4.1]: mqtt-packet's generic
 * writer costs more (a debug call and buffers per field) than the rest of
 * the acknowledgement. The writes of one event-loop turn leave in one
 * system call (see {@link corkForTurn}).
 */
export function writePuback (conn: MqttClient, messageId: number): boolean {
  if (!conn.connected) return false
  const packet = Buffer.allocUnsafe(4)
  packet[0] = 0x40 // PUBACK, no flags
  packet[1] = 0x02 // remaining length
  packet.writeUInt16BE(messageId, 2)
  corkForTurn(conn.stream)
  conn.stream.write(packet)
  return true
}

const corked = new WeakSet<object>()

/**
 * Holds the socket's writes until the end of this event-loop turn, so the
 * PUBACKs and outcome publishes of every task that settled in the turn go
 * out together (mqtt-packet only corks one packet's own fields).
 */
export function corkForTurn (stream: MqttClient['stream']): void {
  if (corked.has(stream) || typeof stream.cork !== 'function') return
  corked.add(stream)
  stream.cork()
  setImmediate(() => {
    corked.delete(stream)
    stream.uncork()
  })
}
