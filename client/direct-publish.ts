import { Store, type IPublishPacket, type MqttClient } from 'mqtt'
import { MAX_REMAINING_LENGTH, remainingLengthBytes, writeFixedHeader } from '../protocol/fixed-header.js'
import { corkForTurn } from './deferred-puback.js'

/**
 * The parts of mqtt.js 5's MqttClient a direct QoS 1 publish relies on
 * (test/worker-transport.test.ts is their tripwire).
 */
interface MqttInternals {
  connected: boolean
  disconnecting: boolean
  /** Pending acknowledgements by packet id: handlers/ack.js calls `cb` on the PUBACK. */
  outgoing: Record<number, { volatile: boolean, cmd: string, cb: (err?: Error | null) => void }>
  messageIdProvider: { allocate (): number | null }
  outgoingStore: object
  /** True while mqtt.js resends its stored publishes after a CONNACK; new ones queue behind them. */
  _storeProcessing: boolean
  _storeProcessingQueue: unknown[]
}

/**
 * A function that writes a QoS 1 PUBLISH (no retain, no DUP) as one
 * pre-built buffer on the connection's socket, in this event-loop turn (see
 * {@link corkForTurn}), and hands it to mqtt.js as its publish() would: in
 * its outgoing store and its table of pending acknowledgements, so the
 * broker's PUBACK frees the packet id and a reconnect resends it. It returns
 * false, writing nothing, when mqtt.js must handle the publish itself: not
 * connected, closing, still resending stored publishes after a reconnect
 * (order), a store of the caller's own, or a packet too large.
 *
 * mqtt-packet writes a PUBLISH field by field (a stream write, a debug call
 * and often a buffer each) after mqtt.js has cloned it into its outgoing
 * store: a sixth of a worker's CPU per task with a no-op handler
 * (docs/client.md, "Writing the result").
 *
 * `onAcked` is called on the broker's PUBACK, or with an error when the
 * client ends first, as the callback of mqtt.js's publish() is.
 */
export function directPublisher (conn: MqttClient, onAcked: (err?: Error | null) => void): (topic: string, payload: string) => boolean {
  const internals = conn as unknown as MqttInternals
  return (topic, payload) => writeQos1Publish(conn, internals, topic, payload, onAcked)
}

/**
 * {@link directPublisher} for one publish: resolves on its PUBACK, rejects
 * as mqtt.js's publishAsync() does; null, writing nothing, when mqtt.js must
 * handle it.
 */
export function publishQos1 (conn: MqttClient, topic: string, payload: string): Promise<void> | null {
  let settle: (err?: Error | null) => void = noop
  const acked = new Promise<void>((resolve, reject) => {
    settle = (err) => { if (err === undefined || err === null) resolve(); else reject(err) }
  })
  return writeQos1Publish(conn, conn as unknown as MqttInternals, topic, payload, settle) ? acked : null
}

function writeQos1Publish (conn: MqttClient, internals: MqttInternals, topic: string, payload: string, acked: (err?: Error | null) => void): boolean {
  if (!internals.connected || internals.disconnecting || internals._storeProcessing || internals._storeProcessingQueue.length > 0) return false
  // Stored synchronously, as written below, only by mqtt.js's own in-memory store.
  if (internals.outgoingStore.constructor !== Store) return false
  const topicBytes = Buffer.byteLength(topic)
  const payloadBytes = Buffer.byteLength(payload)
  // [MQTT-3.3.2.1] topic name as a length-prefixed UTF-8 string, [MQTT-3.3.2.2] packet id, then the payload.
  const remaining = 2 + topicBytes + 2 + payloadBytes
  if (topicBytes > 0xffff || remaining > MAX_REMAINING_LENGTH) return false
  const messageId = internals.messageIdProvider.allocate()
  if (messageId === null) return false

  const packet = Buffer.allocUnsafe(1 + remainingLengthBytes(remaining) + remaining)
  // [MQTT-3.3.1] PUBLISH, QoS 1, no DUP, no retain
  let offset = writeFixedHeader(packet, 0x32, remaining)
  packet.writeUInt16BE(topicBytes, offset)
  offset += 2
  packet.write(topic, offset)
  offset += topicBytes
  packet.writeUInt16BE(messageId, offset)
  offset += 2
  packet.write(payload, offset)

  // As mqtt.js's publish() does, but stored as it is rather than cloned
  // (nothing else holds it). The PUBACK calls `acked` (handlers/ack.js).
  const stored: IPublishPacket = { cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false, messageId }
  ;(internals.outgoingStore as InstanceType<typeof Store>).put(stored, noop)
  internals.outgoing[messageId] = { volatile: false, cmd: 'publish', cb: acked }
  corkForTurn(conn.stream)
  conn.stream.write(packet)
  return true
}

function noop (): void {}
