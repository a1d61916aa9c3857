// Packets for bench/fuzz.ts: valid MQTT 3.1.1 byte strings built with
// mqtt-packet (the parser Aedes uses), hostile JSON for the topics the broker
// parses, and the mutations applied to them. Everything draws from a seeded
// PRNG so a run can be replayed with its seed.
import mqttPacket, { type Packet } from 'mqtt-packet'

export type Rng = () => number

/** mulberry32: small, fast, good enough to choose bytes; the same seed gives the same stream. */
export function prng (seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const int = (rng: Rng, below: number): number => Math.floor(rng() * below)
export function pick<T> (rng: Rng, items: readonly T[]): T {
  const item = items[int(rng, items.length)]
  if (item === undefined) throw new Error('pick from an empty list')
  return item
}

const generate = (packet: Record<string, unknown>): Buffer => mqttPacket.generate(packet as unknown as Packet)

// Topics and filters, valid and not: the broker's own prefixes, wildcards where
// a PUBLISH may not have them, empty levels, NUL, deep and long topics.
const TOPICS = [
  'fuzz/a', 'fuzz/a/b', 'tasks/thumbnail', 'tasks/unknown-type', '$fleetq/share/prefetch', '$fleetq/schedules/request',
  '$delayed/1/fuzz/d', '$delayed/abc/fuzz', '$delayed/99999999999/fuzz', '$delayed//', '$share/g/fuzz/a', '$SYS/broker/uptime',
  '$fleetq/results/someone/1', '$fleetq/dead/thumbnail', '$fleetq/replies/x/1', '#', '+', 'fuzz/+/b', 'fuzz/#/b', '',
  '/', '//', 'fuzz/\u0000nul', 'fuzz/ümlaut/ß', 'a/'.repeat(150), 'x'.repeat(4000)
]
const FILTERS = [
  'fuzz/#', 'fuzz/+', '#', '+/+', '$share/g/fuzz/#', '$share/g/tasks/thumbnail', '$share//x', '$share/g', '$delayed/#',
  '$SYS/#', '$fleetq/#', 'tasks/+', 'fuzz/#/x', 'fuzz/a#', '', 'fuzz/\u0000', '+'.repeat(50), 'a/'.repeat(150) + '#'
]

function deep (open: string, inner: string, close: string, depth: number): string {
  return open.repeat(depth) + inner + close.repeat(depth)
}

const invalidUtf8 = Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0xc3, 0x28, 0x22, 0x3a, 0xed, 0xa0, 0x80, 0x7d])

/** Hostile task payloads (issue: each must be dead-lettered, never crash the gate). */
export const TASK_PAYLOADS: readonly Buffer[] = [
  deep('[', '', ']', 5000),
  deep('{"a":', '1', '}', 5000),
  deep('[{"a":', '1', '}]', 2000),
  '[' + '0,'.repeat(50_000) + '0]',
  '{' + Array.from({ length: 5000 }, (_, i) => `"k${i}":${i}`).join(',') + '}',
  invalidUtf8,
  '{"image":"a","image":"b","width":1,"width":2}',
  '{"__proto__":{"polluted":true},"image":"x","width":64}',
  '{"constructor":{"prototype":{"polluted":true}}}',
  '{"payload":{"__proto__":{"x":1}},"producer":"someone-else","replyTo":"$SYS/x","id":"__proto__"}',
  '{"image":"s3://bucket/a.png","width":64,"height":64}',
  'null', '5', '[]', '"x"', '', 'true', '1e999', '{"a":', '{"a":1}}', '\u0000', '{"a":"\\ud800"}'
].map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p)))

/** `$fleetq/share/prefetch`: `{"prefetch": n, "group"?: name}` and everything else (docs/shared-subscriptions.md). */
export const PREFETCH_PAYLOADS: readonly Buffer[] = [
  'null', '5', '[]', '"x"', '{}', 'true', '{"prefetch":-1}', '{"prefetch":0}', '{"prefetch":1.5}', '{"prefetch":1e308}',
  '{"prefetch":"8"}', '{"prefetch":8,"group":{}}', '{"prefetch":8,"group":"__proto__"}', '{"__proto__":{"prefetch":3}}',
  '{"prefetch":1000000000}', '{"prefetch":null,"group":null}', '{"prefetch":8,"group":"' + 'g'.repeat(5000) + '"}',
  deep('{"prefetch":', '1', '}', 3000), invalidUtf8
].map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p)))

/** `$fleetq/schedules/request`: `{ id, op, ... }` (broker/scheduler/schedule-api.ts), of every wrong shape, none a valid schedule. */
export const SCHEDULE_PAYLOADS: readonly Buffer[] = [
  'null', '5', '[]', '"x"', '{}', '{"id":1}', '{"id":"a","op":"list"}', '{"id":"a/b","op":"get","name":"x"}',
  '{"id":"+","op":"list"}', '{"id":"x","op":"upsert","schedule":null}', '{"id":"x","op":"upsert","schedule":[]}',
  '{"id":"x","op":"upsert","schedule":{"name":"__proto__","cron":"not a cron","topic":"fuzz/s"}}',
  '{"id":"x","op":"upsert","schedule":{"name":"x","cron":"* * * * *","topic":"#"}}',
  '{"id":{"__proto__":1},"op":"list"}', '{"id":"x","op":"remove","name":{"toString":1}}', '{"id":"x","op":"constructor"}',
  '{"id":"x","op":"__proto__"}', '{"id":"' + 'x'.repeat(10_000) + '","op":"list"}', '{"__proto__":{"op":"list"},"id":"p"}',
  deep('{"id":', '"x"', '}', 3000), invalidUtf8
].map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p)))

const PAYLOADS: readonly Buffer[] = [Buffer.alloc(0), Buffer.from('hello'), Buffer.alloc(1000, 0xaa), ...TASK_PAYLOADS.slice(5, 12)]

/** The payload a PUBLISH to `topic` carries: hostile JSON for topics the broker parses. */
function payloadFor (rng: Rng, topic: string): Buffer {
  if (topic.startsWith('tasks/') || topic.startsWith('$delayed/1/tasks/')) return pick(rng, TASK_PAYLOADS)
  if (topic === '$fleetq/share/prefetch') return pick(rng, PREFETCH_PAYLOADS)
  if (topic === '$fleetq/schedules/request') return pick(rng, SCHEDULE_PAYLOADS)
  return pick(rng, PAYLOADS)
}

const messageId = (rng: Rng): number => 1 + int(rng, 65535)

/**
 * Client ids: mostly fresh; a few from a small pool so persistent sessions are
 * taken over and cleaned again rather than piling up in the store.
 */
function clientId (rng: Rng): string {
  return rng() < 0.1 ? `fuzz-pool-${int(rng, 4)}` : `fuzz-${int(rng, 2 ** 30).toString(36)}`
}

export function connectPacket (rng: Rng): Buffer {
  const id = clientId(rng)
  const packet: Record<string, unknown> = {
    cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: id,
    clean: !id.startsWith('fuzz-pool-') || rng() < 0.5, keepalive: int(rng, 120)
  }
  if (rng() < 0.2) {
    const topic = pick(rng, ['fuzz/will', 'tasks/thumbnail', '$fleetq/share/prefetch', '$fleetq/schedules/request'])
    packet['will'] = { topic, payload: payloadFor(rng, topic), qos: int(rng, 3), retain: rng() < 0.2 }
  }
  if (rng() < 0.2) {
    packet['username'] = pick(rng, ['admin', 'fuzz', '', '\u0000', 'ü'.repeat(100)])
    packet['password'] = Buffer.from(pick(rng, ['secret', '', 'x'.repeat(1000)]))
  }
  return generate(packet)
}

export function publishPacket (rng: Rng, qos = int(rng, 3)): Buffer {
  const topic = rng() < 0.5 ? pick(rng, ['tasks/thumbnail', '$fleetq/share/prefetch', '$fleetq/schedules/request']) : pick(rng, TOPICS)
  return generate({
    cmd: 'publish', topic, payload: payloadFor(rng, topic), qos, retain: rng() < 0.05, dup: rng() < 0.1,
    ...(qos > 0 ? { messageId: messageId(rng) } : {})
  })
}

function subscribePacket (rng: Rng): Buffer {
  const count = 1 + int(rng, 3)
  return generate({
    cmd: 'subscribe', messageId: messageId(rng),
    subscriptions: Array.from({ length: count }, () => ({ topic: pick(rng, FILTERS), qos: int(rng, 3) }))
  })
}

function unsubscribePacket (rng: Rng): Buffer {
  return generate({ cmd: 'unsubscribe', messageId: messageId(rng), unsubscriptions: [pick(rng, FILTERS)] })
}

/** Packets sent after a CONNECT, valid byte strings all. */
export function validPacket (rng: Rng): Buffer {
  const r = rng()
  if (r < 0.5) return publishPacket(rng)
  if (r < 0.65) return subscribePacket(rng)
  if (r < 0.72) return unsubscribePacket(rng)
  if (r < 0.82) return generate({ cmd: 'pingreq' })
  if (r < 0.9) return generate({ cmd: 'pubrel', messageId: messageId(rng) })
  if (r < 0.95) return generate({ cmd: pick(rng, ['puback', 'pubrec', 'pubcomp']), messageId: messageId(rng) })
  if (r < 0.97) return generate({ cmd: 'disconnect' })
  return connectPacket(rng) // a second CONNECT is a protocol violation [MQTT-3.1.0-2]
}

/** Offset and size of the remaining-length field (bytes 1..4). */
function lengthField (packet: Buffer): { start: number, end: number } {
  let end = 1
  while (end < packet.length && end < 5 && ((packet[end] ?? 0) & 0x80) !== 0) end++
  return { start: 1, end: Math.min(end + 1, packet.length) }
}

function encodeLength (value: number): Buffer {
  const bytes: number[] = []
  let v = value
  do {
    let byte = v % 128
    v = Math.floor(v / 128)
    if (v > 0) byte |= 0x80
    bytes.push(byte)
  } while (v > 0 && bytes.length < 4)
  return Buffer.from(bytes)
}

function withLength (packet: Buffer, length: Buffer): Buffer {
  const { start, end } = lengthField(packet)
  return Buffer.concat([packet.subarray(0, start), length, packet.subarray(end)])
}

/** Replaces the first `marker` in `packet` with `bytes` of the same length. */
function replaceMarker (packet: Buffer, marker: string, bytes: Buffer): Buffer {
  const at = packet.indexOf(marker)
  if (at < 0) return packet
  const copy = Buffer.from(packet)
  bytes.copy(copy, at, 0, Math.min(bytes.length, marker.length))
  return copy
}

const BAD_TOPIC_BYTES = [
  Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from([0xed, 0xa0, 0x80, 0x41]), Buffer.from([0x00, 0x00, 0x00, 0x00]),
  Buffer.from([0x66, 0x00, 0x2f, 0x23]), Buffer.from([0xf8, 0x88, 0x80, 0x80]), Buffer.from([0xef, 0xbf, 0xbf, 0x2b])
]

/** A topic or filter with bytes no MQTT string may hold [MQTT-1.5.3-1, MQTT-1.5.3-2]. */
function badTopicPacket (rng: Rng): Buffer {
  const bytes = pick(rng, BAD_TOPIC_BYTES)
  const r = rng()
  const packet = r < 0.5
    ? generate({ cmd: 'publish', topic: 'fuzz/QQQQ', payload: Buffer.from('x'), qos: int(rng, 2), messageId: messageId(rng), retain: false, dup: false })
    : r < 0.8
      ? generate({ cmd: 'subscribe', messageId: messageId(rng), subscriptions: [{ topic: 'fuzz/QQQQ', qos: int(rng, 3) }] })
      : generate({ cmd: 'unsubscribe', messageId: messageId(rng), unsubscriptions: ['fuzz/QQQQ'] })
  return replaceMarker(packet, 'QQQQ', bytes)
}

/** A CONNECT whose protocol name or level is wrong [MQTT-3.1.2-1, MQTT-3.1.2-2]. */
function wrongProtocolConnect (rng: Rng): Buffer {
  const valid = connectPacket(rng)
  const at = valid.indexOf('MQTT')
  if (at < 0) return valid
  const copy = Buffer.from(valid)
  if (rng() < 0.5) {
    Buffer.from(pick(rng, ['MQTX', 'mqtt', 'MQIs', '\u0000QTT', 'HTTP'])).copy(copy, at)
  } else {
    copy[at + 4] = pick(rng, [0, 1, 2, 3, 5, 6, 0x7f, 0xff])
  }
  return copy
}

/** A template a mutation starts from: every packet type the fuzzer knows. */
function template (rng: Rng): Buffer {
  return rng() < 0.15 ? connectPacket(rng) : validPacket(rng)
}

/** One mutation of a valid packet, or garbage. */
export function mutatedPacket (rng: Rng): Buffer {
  const r = int(rng, 12)
  const packet = template(rng)
  switch (r) {
    case 0: { // bit flips
      const copy = Buffer.from(packet)
      for (let i = 1 + int(rng, 8); i > 0; i--) {
        const at = int(rng, copy.length)
        copy[at] = (copy[at] ?? 0) ^ (1 << int(rng, 8))
      }
      return copy
    }
    case 1: return packet.subarray(0, int(rng, packet.length)) // truncated
    case 2: return withLength(packet, encodeLength(int(rng, 268_435_456))) // any declared length
    case 3: return withLength(packet, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x7f])) // a five-byte length [MQTT-2.2.3]
    case 4: { // duplicated bytes
      const from = int(rng, packet.length)
      const slice = packet.subarray(from, from + 1 + int(rng, 16))
      const at = int(rng, packet.length)
      return Buffer.concat([packet.subarray(0, at), slice, packet.subarray(at)])
    }
    case 5: { // removed bytes
      const at = int(rng, packet.length)
      return Buffer.concat([packet.subarray(0, at), packet.subarray(at + 1 + int(rng, 16))])
    }
    case 6: { // remaining length a little off
      const actual = packet.length - lengthField(packet).end
      return withLength(packet, encodeLength(Math.max(0, actual + int(rng, 9) - 4)))
    }
    case 7: return wrongProtocolConnect(rng)
    case 8: return badTopicPacket(rng)
    case 9: return withLength(packet.subarray(0, 2 + int(rng, 64)), Buffer.from([0xff, 0xff, 0xff, 0x7f])) // 256 MB declared, little sent
    case 10: { // reserved flags and packet types 0 and 15 [MQTT-2.2.2-2]
      const copy = Buffer.from(packet)
      copy[0] = int(rng, 256)
      return copy
    }
    default: { // garbage
      const bytes = Buffer.alloc(1 + int(rng, 256))
      for (let i = 0; i < bytes.length; i++) bytes[i] = int(rng, 256)
      return bytes
    }
  }
}
