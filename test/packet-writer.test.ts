import mqttPacket from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { COPIED_PAYLOAD_BYTES, encodeAck, encodePublish, wholePacketsWritten } from '../broker/mqtt/internals/packet-writer.js'
import { Clients, waitForMessages } from './helpers/mqtt-helpers.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'

/**
 * broker/mqtt/internals/packet-writer.ts encodes MQTT 3.1.1 PUBLISH and
 * PUBACK-family packets itself, in one Buffer each. mqtt-packet's own
 * `generate` is the reference: every shape must come out byte for byte the
 * same, and whatever the encoder does not cover is left to mqtt-packet.
 */
type Generated = Parameters<typeof mqttPacket.generate>[0]

function reference (packet: Record<string, unknown>): Buffer {
  return mqttPacket.generate({ ...packet } as unknown as Generated)
}

function ours (packet: Record<string, unknown>): Buffer {
  const chunks = encodePublish(packet)
  if (chunks === null) throw new Error(`not encoded: ${JSON.stringify(packet)}`)
  return Buffer.concat(chunks)
}

describe('packet writer (broker/mqtt/internals/packet-writer.ts)', () => {
  let b: TestBroker | undefined
  const clients = new Clients()

  afterEach(async () => {
    await clients.closeAll()
    await b?.close()
    b = undefined
  })

  it('encodes every PUBLISH shape byte for byte as mqtt-packet generates it', () => {
    const topics = ['a', 'tasks/thumbnail', 'ünïcødé/☃/Ω', 'x'.repeat(300)]
    const payloads: unknown[] = [undefined, '', Buffer.alloc(0), Buffer.from('hi'), 'a string ☃',
      Buffer.alloc(COPIED_PAYLOAD_BYTES, 1), Buffer.alloc(COPIED_PAYLOAD_BYTES + 1, 2), Buffer.alloc(70_000, 3)]
    let compared = 0
    for (const topic of topics) {
      for (const payload of payloads) {
        for (const qos of [0, 1, 2]) {
          for (const flags of [{ dup: false, retain: false }, { dup: true, retain: true }]) {
            const packet = { cmd: 'publish', topic, payload, qos, ...flags, ...(qos > 0 ? { messageId: 1 + compared % 65535 } : {}) }
            expect(ours(packet).equals(reference(packet)), JSON.stringify({ ...packet, payload: String(payload).slice(0, 20) })).toBe(true)
            compared++
          }
        }
      }
    }
    expect(compared).toBe(4 * 8 * 3 * 2)
  })

  it('writes the Remaining Length right at each of its byte boundaries [MQTT-2.2.3]', () => {
    // topic 'a', QoS 1: the Remaining Length is 5 + the payload's length
    for (const remaining of [127, 128, 16_383, 16_384, 2_097_151, 2_097_152]) {
      const packet = { cmd: 'publish', topic: 'a', payload: Buffer.alloc(remaining - 5, 7), qos: 1, messageId: 65535, dup: false, retain: false }
      const encoded = ours(packet)
      expect(encoded.equals(reference(packet)), `Remaining Length ${remaining}`).toBe(true)
      expect(mqttPacket.parser().parse(encoded), `Remaining Length ${remaining} parses back`).toBe(0)
    }
  })

  it('encodes PUBACK, PUBREC, PUBREL and PUBCOMP as mqtt-packet does, and leaves a PUBREL with DUP to it', () => {
    for (const cmd of ['puback', 'pubrec', 'pubrel', 'pubcomp']) {
      for (const messageId of [1, 256, 0x1234, 65535]) {
        for (const dup of cmd === 'pubrel' ? [false] : [false, true]) {
          const packet = { cmd, messageId, dup }
          expect(encodeAck(packet)?.equals(reference(packet)), JSON.stringify(packet)).toBe(true)
        }
      }
    }
    // mqtt-packet 9 throws on it (its header table is indexed by the DUP mask); the broker's behaviour stays mqtt-packet's.
    expect(encodeAck({ cmd: 'pubrel', messageId: 1, dup: true })).toBeNull()
  })

  it('leaves to mqtt-packet what it does not encode: MQTT 5 properties, other packets, values mqtt-packet would refuse', () => {
    const publish = { cmd: 'publish', topic: 't', payload: Buffer.from('x'), qos: 1, messageId: 7, dup: false, retain: false }
    expect(encodePublish(publish)).not.toBeNull()
    expect(encodePublish({ ...publish, properties: { contentType: 'text/plain' } })).toBeNull()
    expect(encodePublish({ ...publish, messageId: undefined })).toBeNull()
    expect(encodePublish({ ...publish, messageId: 70_000 })).toBeNull()
    expect(encodePublish({ ...publish, qos: 3 })).toBeNull()
    expect(encodePublish({ ...publish, topic: Buffer.from('t') })).toBeNull()
    expect(encodePublish({ ...publish, payload: new Uint8Array([1]) })).toBeNull()
    expect(encodeAck({ cmd: 'puback', messageId: 7 })).not.toBeNull()
    expect(encodeAck({ cmd: 'puback', messageId: 7, properties: {} })).toBeNull()
    expect(encodeAck({ cmd: 'puback' })).toBeNull()
    expect(encodeAck({ cmd: 'suback', messageId: 7 })).toBeNull()
  })

  it('a broker writes its PUBLISHes and PUBACKs whole, and messages of every size arrive intact with their flags', async () => {
    b = await startBroker()
    const topic = uniqueTopic('pw')
    const before = wholePacketsWritten()
    const sub = await clients.connect(b.url, { clientId: `${topic}-sub` })
    await sub.client.subscribeAsync(`${topic}/#`, { qos: 1 })
    const pub = await clients.connect(b.url, { clientId: `${topic}-pub` })
    const sizes = [0, 10, COPIED_PAYLOAD_BYTES, COPIED_PAYLOAD_BYTES + 1, 70_000]
    for (const [i, size] of sizes.entries()) {
      // Resolves on the broker's PUBACK, written by the encoder.
      await pub.client.publishAsync(`${topic}/${i}`, Buffer.alloc(size, 0x61 + i), { qos: 1 })
    }
    await pub.client.publishAsync(`${topic}/retained`, 'kept', { qos: 1, retain: true })
    const received = await waitForMessages(sub.messages, sizes.length + 1, 'the messages')
    expect(received.map((m) => [m.topic, m.payload.length, m.qos])).toEqual([
      ...sizes.map((size, i) => [`${topic}/${i}`, size, 1]),
      [`${topic}/retained`, 4, 1]
    ])
    expect(received.every((m, i) => i === sizes.length || m.payload === String.fromCharCode(0x61 + i).repeat(sizes[i] ?? 0))).toBe(true)
    // A new subscriber gets the retained message with its RETAIN flag [MQTT-3.3.1-8].
    const late = await clients.connect(b.url, { clientId: `${topic}-late` })
    await late.client.subscribeAsync(`${topic}/retained`, { qos: 1 })
    const [retained] = await waitForMessages(late.messages, 1, 'the retained message')
    expect(retained).toMatchObject({ topic: `${topic}/retained`, payload: 'kept', qos: 1, retain: true })
    // Six PUBACKs to the publisher, six deliveries, one retained delivery, at least.
    expect(wholePacketsWritten() - before).toBeGreaterThanOrEqual(13)
  })
})
