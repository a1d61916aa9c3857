import { Packr } from 'msgpackr'

/** The fields of an aedes packet that fleetq stores. */
export interface StoredPacket {
  cmd: string
  topic: string
  payload: Buffer
  qos: 0 | 1 | 2
  retain: boolean
  dup: boolean
  brokerId?: string | null
  brokerCounter?: number
  messageId?: number
  clientId?: string
}

// Records off: every value is a plain map, readable by any msgpack decoder.
const packr = new Packr({ useRecords: false, mapsAsObjects: true })

/**
 * Stores every own field the packet has (aedes-persistence's suite expects a
 * packet back as it was given), with the payload as bytes.
 */
export function encodePacket (packet: Partial<StoredPacket>): Buffer {
  const stored: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(packet)) {
    if (value === undefined || value === null || typeof value === 'function') continue
    stored[key] = value
  }
  if (packet.payload !== undefined) stored['payload'] = toBuffer(packet.payload)
  return packr.pack(stored)
}

// The fields aedes-packet carries: what a queued or incoming packet is stored as.
const PACKET_FIELDS = ['cmd', 'brokerId', 'brokerCounter', 'topic', 'payload', 'qos', 'retain', 'dup', 'messageId',
  'clientId', 'nl', 'properties', 'messageExpiry'] as const

/** Stores a packet as aedes-packet would copy it (no parser leftovers such as `length`). */
export function encodeQueuedPacket (packet: Partial<StoredPacket>): Buffer {
  const stored: Record<string, unknown> = {}
  const source = packet as Record<string, unknown>
  for (const key of PACKET_FIELDS) {
    const value = source[key]
    if (value === undefined || value === null) continue
    stored[key] = value
  }
  return packr.pack(stored)
}

/** Decodes a queued packet into aedes-packet's shape ([MQTT-2.3.1-5]: QoS > 0 has a messageId slot). */
export function decodeQueuedPacket (blob: Buffer): StoredPacket {
  const packet = decodePacket(blob)
  if (packet.cmd === 'publish' && packet.qos > 0 && !('messageId' in packet)) packet.messageId = undefined
  return packet
}

export function decodePacket (blob: Buffer): StoredPacket {
  const packet = packr.unpack(blob) as StoredPacket
  if (packet.payload instanceof Uint8Array) packet.payload = toBuffer(packet.payload)
  return packet
}

export function encodeValue (value: unknown): Buffer {
  return packr.pack(value)
}

export function decodeValue<T> (blob: Buffer): T {
  return packr.unpack(blob) as T
}

function toBuffer (payload: unknown): Buffer {
  if (Buffer.isBuffer(payload)) return payload
  if (payload instanceof Uint8Array) return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  if (typeof payload === 'string') return Buffer.from(payload)
  return Buffer.alloc(0)
}
