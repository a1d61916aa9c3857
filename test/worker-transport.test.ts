// Tripwire for client/deferred-puback.ts and client/direct-publish.ts: what
// the worker relies on in mqtt.js's handling of an incoming QoS 1 PUBLISH and
// of its own outgoing ones. An upgrade that changes it fails here rather than
// in a worker that blocks, acknowledges too early or leaks packet ids.
import { createRequire } from 'node:module'
import { afterEach, describe, expect, it } from 'vitest'
import mqtt, { Store, type IPublishPacket, type MqttClient } from 'mqtt'
import { takeAcksOver, writePuback } from '../client/deferred-puback.js'
import { directPublisher } from '../client/direct-publish.js'
import { PREFETCH_TOPIC } from '../protocol/topics.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

describe('mqtt.js: PUBACKs deferred by the worker', () => {
  let b: TestBroker | undefined
  const raws: MqttClient[] = []
  afterEach(async () => {
    await Promise.all(raws.splice(0).map((c) => c.endAsync(true)))
    await b?.close()
    b = undefined
  })

  it('is the mqtt.js major version this was written against', () => {
    const version = (createRequire(import.meta.url)('mqtt/package.json') as { version: string }).version
    expect(version).toMatch(/^5\./)
  })

  it('an error callback from handleMessage sends no PUBACK and lets later PUBLISHes in; writePuback acknowledges', async () => {
    b = await startBroker()
    const member = await mqtt.connectAsync(b.url, { protocolVersion: 4, clientId: 'deferred-acks', reconnectPeriod: 0 })
    raws.push(member)
    const received: IPublishPacket[] = []
    takeAcksOver(member, (packet) => received.push(packet))
    await member.publishAsync(PREFETCH_TOPIC, JSON.stringify({ prefetch: 3, group: 'g' }), { qos: 1 })
    await member.subscribeAsync('$share/g/deferred/+', { qos: 1 })
    const publisher = await mqtt.connectAsync(b.url, { protocolVersion: 4, reconnectPeriod: 0 })
    raws.push(publisher)
    for (const n of [1, 2, 3]) await publisher.publishAsync(`deferred/${n}`, String(n), { qos: 1 })

    const inflight = (): number | undefined => b!.broker.stats().sharedGroups.find((g) => g.group === 'g')?.inflight
    // all three read although none was acknowledged: the input is not blocked
    await waitUntil(() => received.length === 3, 'three PUBLISHes read without acknowledging any')
    expect(received.map((p) => p.topic)).toEqual(['deferred/1', 'deferred/2', 'deferred/3'])
    await expectNothingFor(100, () => inflight() !== 3, 'a PUBACK mqtt.js sent by itself')

    for (const p of received) expect(writePuback(member, p.messageId!)).toBe(true)
    await waitUntil(() => inflight() === 0, 'the three PUBACKs written by hand to arrive')
  })
})

describe('mqtt.js: a QoS 1 PUBLISH written by the worker itself', () => {
  let b: TestBroker | undefined
  const raws: MqttClient[] = []
  afterEach(async () => {
    await Promise.all(raws.splice(0).map((c) => c.endAsync(true)))
    await b?.close()
    b = undefined
  })

  /** mqtt.js's table of publishes awaiting a PUBACK (client.js `outgoing`), read by handlers/ack.js. */
  const pending = (c: MqttClient): Record<number, unknown> => (c as unknown as { outgoing: Record<number, unknown> }).outgoing
  const stored = (c: MqttClient, messageId: number): Promise<IPublishPacket | null> => new Promise((resolve) => {
    c.outgoingStore.get({ messageId }, (err, packet) => resolve(err === undefined || err === null ? (packet as IPublishPacket | undefined) ?? null : null))
  })

  it('arrives intact at every Remaining Length size; its PUBACK calls back and frees the id in mqtt.js', async () => {
    b = await startBroker()
    const prefix = uniqueTopic('direct')
    const sub = await mqtt.connectAsync(b.url, { protocolVersion: 4, reconnectPeriod: 0 })
    const pub = await mqtt.connectAsync(b.url, { protocolVersion: 4, reconnectPeriod: 0 })
    raws.push(sub, pub)
    const received: IPublishPacket[] = []
    sub.on('message', (_topic, _payload, packet) => received.push(packet))
    await sub.subscribeAsync(`${prefix}/#`, { qos: 1 })

    const acks: Array<Error | null | undefined> = []
    const send = directPublisher(pub, (err) => acks.push(err))
    // 1, 2 and 3 bytes of Remaining Length [MQTT-2.2.3]; multi-byte UTF-8 in topic and payload.
    const payloads = ['{"ok":true}', `"${'é'.repeat(100)}"`, JSON.stringify({ big: 'x'.repeat(20_000) })]
    const topics = payloads.map((_, i) => `${prefix}/ü${i}`)
    for (const [i, payload] of payloads.entries()) {
      expect(send(topics[i]!, payload)).toBe(true)
      const id = pub.getLastMessageId()
      // Registered as mqtt.js's publish() does: pending and stored, so a reconnect resends it.
      expect(pending(pub)[id]).toMatchObject({ cmd: 'publish', volatile: false })
      expect(await stored(pub, id)).toMatchObject({ cmd: 'publish', topic: topics[i], payload, qos: 1, messageId: id })
    }
    await waitUntil(() => received.length === 3 && acks.length === 3, 'the three publishes and their PUBACKs')
    expect(received.map((p) => [p.topic, p.payload.toString('utf8'), p.qos])).toEqual(payloads.map((payload, i) => [topics[i], payload, 1]))
    // no error: mqtt.js passes null or nothing
    expect(acks.filter((err) => err !== null && err !== undefined)).toEqual([])
    expect(Object.keys(pending(pub))).toEqual([])
    expect(await stored(pub, pub.getLastMessageId())).toBeNull()
  })

  it('leaves the publish to mqtt.js when offline or with a store of the caller\'s own', async () => {
    b = await startBroker()
    const custom = await mqtt.connectAsync(b.url, { protocolVersion: 4, reconnectPeriod: 0, outgoingStore: new (class extends Store {})() })
    raws.push(custom)
    expect(directPublisher(custom, () => undefined)('t/custom', '{}')).toBe(false)
    const plain = await mqtt.connectAsync(b.url, { protocolVersion: 4, reconnectPeriod: 0 })
    raws.push(plain)
    await plain.endAsync()
    expect(directPublisher(plain, () => undefined)('t/offline', '{}')).toBe(false)
  })
})
