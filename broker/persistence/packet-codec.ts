
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

/*
 * Stored format, version 1: one byte for the payload's kind (0 none, 1 bytes,
 * 2 string), four bytes (big-endian) for the length of a JSON header holding
 * every other field, the header, then the payload as raw bytes. JSON keeps the
 * store readable by anything; the payload is not base64-inflated.
 * (msgpackr was the first choice; its optional native add-on cannot be
 * locked for every platform from this registry, which breaks `npm ci`.)
 */
const NO_PAYLOAD = 0
const BYTES = 1
const STRING = 2

function pack (fields: Record<string, unknown>, payload: unknown): Buffer {
  const header = Buffer.from(JSON.stringify(fields), 'utf8')
  let kind = NO_PAYLOAD
  let body: Buffer = Buffer.alloc(0)
  if (typeof payload === 'string') {
    kind = STRING
    body = Buffer.from(payload, 'utf8')
  } else if (payload instanceof Uint8Array) {
    kind = BYTES
    body = toBuffer(payload)
  }
  const prefix = Buffer.allocUnsafe(5)
  prefix.writeUInt8(kind, 0)
  prefix.writeUInt32BE(header.length, 1)
  return Buffer.concat([prefix, header, body])
}

function unpack (blob: Buffer): Record<string, unknown> {
  const kind = blob.readUInt8(0)
  const headerLength = blob.readUInt32BE(1)
  const fields = JSON.parse(blob.toString('utf8', 5, 5 + headerLength)) as Record<string, unknown>
  // copy: LevelDB may hand out a view of a buffer it reuses
  const body = Buffer.from(blob.subarray(5 + headerLength))
  if (kind === BYTES) fields['payload'] = body
  else if (kind === STRING) fields['payload'] = body.toString('utf8')
  return fields
}

/**
 * Stores every own field the packet has (aedes-persistence's suite expects a
 * packet back as it was given), with the payload as bytes.
 */
export function encodePacket (packet: Partial<StoredPacket>): Buffer {
  const stored: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(packet)) {
    if (key === 'payload' || value === undefined || value === null || typeof value === 'function') continue
    stored[key] = value
  }
  return pack(stored, packet.payload === undefined ? undefined : toBuffer(packet.payload))
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
    if (key === 'payload' || value === undefined || value === null) continue
    stored[key] = value
  }
  return pack(stored, source['payload'])
}

/** Decodes a queued packet into aedes-packet's shape ([MQTT-2.3.1-5]: QoS > 0 has a messageId slot). */
export function decodeQueuedPacket (blob: Buffer): StoredPacket {
  const packet = decodePacket(blob)
  if (packet.cmd === 'publish' && packet.qos > 0 && !('messageId' in packet)) packet.messageId = undefined
  return packet
}

export function decodePacket (blob: Buffer): StoredPacket {
  return unpack(blob) as unknown as StoredPacket
}

/** A JSON-able record; a top-level `payload` Buffer or string is kept as raw bytes. */
export function encodeValue (value: object): Buffer {
  const { payload, ...rest } = value as Record<string, unknown>
  return pack(rest, payload)
}

export function decodeValue<T> (blob: Buffer): T {
  return unpack(blob) as T
}

function toBuffer (payload: unknown): Buffer {
  if (Buffer.isBuffer(payload)) return payload
  if (payload instanceof Uint8Array) return Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength)
  if (typeof payload === 'string') return Buffer.from(payload)
  return Buffer.alloc(0)
}
