// Tripwire for client/deferred-puback.ts: what the worker relies on in
// mqtt.js's handling of an incoming QoS 1 PUBLISH. An upgrade that changes it
// fails here rather than in a worker that blocks or acknowledges too early.
import { createRequire } from 'node:module'
import { afterEach, describe, expect, it } from 'vitest'
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt'
import { takeAcksOver, writePuback } from '../client/deferred-puback.js'
import { PREFETCH_TOPIC } from '../protocol/topics.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
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
