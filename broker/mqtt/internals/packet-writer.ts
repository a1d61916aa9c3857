import mqttPacket from 'mqtt-packet'
import { MAX_REMAINING_LENGTH, remainingLengthBytes, writeFixedHeader } from '../../../protocol/fixed-header.js'
import { holdUntilCheckPhase, isCoalesced } from './coalesced-writes.js'

/*
 * Patch of mqtt-packet 9's `writeToStream` (tripwire: "packet writer" in
 * test/packet-writer.test.ts). Aedes's lib/write.js reads
 * `mqtt.writeToStream` from mqtt-packet's exports at every call, as do
 * packet-ids.ts and queue-writer.ts. mqtt-packet writes a PUBLISH as five
 * chunks (fixed header, Remaining Length, topic length, topic, packet
 * identifier, then the payload) and a PUBACK as three, each a
 * `stream.write()` with its own buffered request on a corked socket, the
 * lengths and identifiers each a new Buffer, the topic a string the socket
 * converts; and it corks and uncorks the stream once per packet through a
 * `process.nextTick`. On a connection whose writes are coalesced
 * (coalesced-writes.ts) the exports' `writeToStream` is replaced by one that
 * encodes the packets the broker sends most, MQTT 3.1.1 PUBLISH and the
 * PUBACK family [MQTT-3.3.1, MQTT-3.4], into one Buffer and writes it once.
 * Anything else (other packets, MQTT 5 properties or options, a value
 * mqtt-packet would refuse, another stream) is mqtt-packet's own, unchanged.
 */

type WriteToStream = (packet: unknown, stream: NodeJS.WritableStream, opts?: unknown) => boolean

/** Payloads up to this size are copied into the packet's one Buffer; larger ones follow it as a second write, not copied. */
export const COPIED_PAYLOAD_BYTES = 2048

const PUBLISH = 0x30
const ACK_TYPES: Readonly<Record<string, number>> = Object.freeze({ puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 })

interface PublishFields {
  cmd?: unknown
  topic?: unknown
  payload?: unknown
  qos?: unknown
  dup?: unknown
  retain?: unknown
  messageId?: unknown
  properties?: unknown
}

let installed = false
let encoded = 0

function isPacketId (id: unknown): id is number {
  return typeof id === 'number' && Number.isInteger(id) && id >= 0 && id <= 0xffff
}

/**
 * A PUBLISH as mqtt-packet would write it for MQTT 3.1.1: the whole packet
 * in one Buffer, or the packet up to its payload and the payload when that is
 * over {@link COPIED_PAYLOAD_BYTES}. Null when mqtt-packet should write it.
 */
export function encodePublish (packet: PublishFields): [Buffer] | [Buffer, Buffer] | null {
  if (packet.properties !== undefined || typeof packet.topic !== 'string') return null
  const qos = packet.qos === undefined || packet.qos === 0 ? 0 : packet.qos
  if (qos !== 0 && qos !== 1 && qos !== 2) return null
  if (qos > 0 && !isPacketId(packet.messageId)) return null
  const raw = packet.payload
  let payload: Buffer
  if (raw === undefined || raw === null || raw === '') payload = EMPTY
  else if (Buffer.isBuffer(raw)) payload = raw
  else if (typeof raw === 'string') payload = Buffer.from(raw)
  else return null
  const topic = packet.topic
  const topicBytes = Buffer.byteLength(topic)
  const remaining = 2 + topicBytes + (qos > 0 ? 2 : 0) + payload.length
  if (remaining > MAX_REMAINING_LENGTH || topicBytes > 0xffff) return null
  const copied = payload.length <= COPIED_PAYLOAD_BYTES
  const headBytes = 1 + remainingLengthBytes(remaining) + remaining - payload.length
  const buffer = Buffer.allocUnsafe(copied ? headBytes + payload.length : headBytes)
  const type = PUBLISH | (packet.dup ? 0x08 : 0) | (qos << 1) | (packet.retain ? 0x01 : 0)
  let offset = writeFixedHeader(buffer, type, remaining)
  buffer.writeUInt16BE(topicBytes, offset)
  offset += 2
  offset += buffer.write(topic, offset, 'utf8')
  if (qos > 0) {
    buffer.writeUInt16BE(packet.messageId as number, offset)
    offset += 2
  }
  if (!copied) return [buffer, payload]
  payload.copy(buffer, offset)
  return [buffer]
}

/** A PUBACK, PUBREC, PUBREL or PUBCOMP as mqtt-packet would write it for MQTT 3.1.1 (which ignores DUP on all but PUBREL); null when mqtt-packet should write it. */
export function encodeAck (packet: PublishFields): Buffer | null {
  const type = typeof packet.cmd === 'string' ? ACK_TYPES[packet.cmd] : undefined
  if (type === undefined || packet.properties !== undefined || !isPacketId(packet.messageId)) return null
  // A PUBREL with DUP: mqtt-packet 9 indexes its header table by the DUP
  // mask and throws a TypeError. Left to it, so the broker's behaviour stays its own.
  if (packet.cmd === 'pubrel' && Boolean(packet.dup)) return null
  const buffer = Buffer.allocUnsafe(4)
  buffer[0] = type
  buffer[1] = 2
  buffer.writeUInt16BE(packet.messageId, 2)
  return buffer
}

const EMPTY = Buffer.alloc(0)

function writeEncoded (packet: PublishFields, stream: NodeJS.WritableStream): boolean | null {
  if (packet.cmd === 'publish') {
    const chunks = encodePublish(packet)
    if (chunks === null) return null
    encoded++
    holdUntilCheckPhase(stream)
    if (chunks.length === 1) return stream.write(chunks[0])
    stream.write(chunks[0])
    return stream.write(chunks[1])
  }
  const ack = encodeAck(packet)
  if (ack === null) return null
  encoded++
  holdUntilCheckPhase(stream)
  return stream.write(ack)
}

/** Once per process, before the first packet is written (MqttAdapter's start). */
export function writePacketsWhole (): void {
  if (installed) return
  const exports = mqttPacket as unknown as { writeToStream: WriteToStream & { cacheNumbers?: boolean } }
  const original = exports.writeToStream
  if (typeof original !== 'function') throw new Error('mqtt-packet internals moved: writeToStream is needed (broker/mqtt/internals/packet-writer.ts)')
  const writeToStream = function writeToStream (packet: unknown, stream: NodeJS.WritableStream, opts?: unknown): boolean {
    if (opts === undefined && packet !== null && typeof packet === 'object' && isCoalesced(stream)) {
      const written = writeEncoded(packet as PublishFields, stream)
      if (written !== null) return written
    }
    return original(packet, stream, opts)
  }
  // mqtt-packet's documented option lives on its own function (number-cache.ts sets it).
  Object.defineProperty(writeToStream, 'cacheNumbers', {
    get: () => original.cacheNumbers,
    set: (value: boolean) => { original.cacheNumbers = value }
  })
  exports.writeToStream = writeToStream
  installed = true
}

/** Packets written by {@link writePacketsWhole}'s encoder since start (for the tripwire). */
export function wholePacketsWritten (): number {
  return encoded
}
