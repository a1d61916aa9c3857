import { afterEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { Clients, expectNothingFor, holdsWithin, waitUntil, type Message } from './helpers/mqtt-helpers.js'

// moscajs/aedes#994: QoS 1 messages were dropped as duplicates when QoS 0
// traffic to the same subscriber overtook them. Several publishers flood one
// QoS 1 wildcard subscriber with interleaved QoS 0 and QoS 1 messages.
const PUBLISHERS = 4
const PER_PUBLISHER = 1250 // of each QoS: 5,000 QoS 1 + 5,000 QoS 0 in all
const TOTAL_QOS1 = PUBLISHERS * PER_PUBLISHER
const BATCH = 250

interface FloodResult {
  qos1: Message[]
  qos0: Message[]
}

describe('mixed QoS flood (moscajs/aedes#994)', () => {
  let b: TestBroker | undefined
  const clients = new Clients()
  afterEach(async () => {
    await clients.closeAll()
    await b?.close()
  })

  /** Floods `${prefix}/{publisher}/q0|q1` and resolves when every QoS 1 PUBACK is in. */
  async function flood (url: string, prefix: string): Promise<void> {
    const publishers: MqttClient[] = []
    for (let i = 0; i < PUBLISHERS; i++) {
      publishers.push((await clients.connect(url, { clientId: `flood-pub-${i}` })).client)
    }
    await Promise.all(publishers.map(async (pub, i) => {
      for (let start = 0; start < PER_PUBLISHER; start += BATCH) {
        // nothing is awaited one by one: each batch goes out as fast as the
        // socket takes it (batches keep mqtt.js under 1,000 'drain' listeners)
        const acks: Array<Promise<unknown>> = []
        for (let seq = start; seq < Math.min(start + BATCH, PER_PUBLISHER); seq++) {
          acks.push(pub.publishAsync(`${prefix}/${i}/q1`, `${i}:${seq}`, { qos: 1 }))
          acks.push(pub.publishAsync(`${prefix}/${i}/q0`, `${i}:${seq}`, { qos: 0 }))
        }
        await Promise.all(acks)
      }
    }))
  }

  /**
   * Waits for every QoS 1 message, then a short window for QoS 0 stragglers
   * and, unless `redelivery` (a reconnect) allows them, QoS 1 duplicates.
   */
  async function collect (messages: Message[], redelivery = false): Promise<FloodResult> {
    const q1Keys = new Set<string>()
    let seen = 0
    const qos1Count = (): number => {
      for (; seen < messages.length; seen++) {
        const m = messages[seen]!
        if (m.topic.endsWith('/q1')) q1Keys.add(m.payload)
      }
      return q1Keys.size
    }
    await waitUntil(() => qos1Count() >= TOTAL_QOS1, `${TOTAL_QOS1} distinct QoS 1 messages`, 40_000,
      () => `have ${q1Keys.size} distinct QoS 1, ${messages.length} messages in all`)
    // QoS 0 is reported, not required: give stragglers a short window
    const allQos0 = await holdsWithin(500, () => messages.length >= 2 * TOTAL_QOS1)
    if (!redelivery) {
      // window to catch QoS 1 duplicates sent after the last new one
      await expectNothingFor(300, () => messages.length > 2 * TOTAL_QOS1, () => `${messages.length} messages in all`)
    }
    const qos1 = messages.filter((m) => m.topic.endsWith('/q1'))
    const qos0 = messages.filter((m) => m.topic.endsWith('/q0'))
    console.info(`mixed QoS flood: ${qos1.length}/${TOTAL_QOS1} QoS 1 received (${q1Keys.size} distinct), ` +
      `${qos0.length}/${TOTAL_QOS1} QoS 0 received${allQos0 ? '' : ' (some QoS 0 lost)'}`)
    return { qos1, qos0 }
  }

  /**
   * Every QoS 1 message arrived, at QoS 1, and each publisher's arrived in
   * the order published [MQTT-4.6.0-6] (one publisher, one topic, one QoS).
   * With `redelivery`, a message seen before may come again (QoS 1 is at least
   * once), but never a new one ahead of an older one.
   */
  function expectAllQos1 ({ qos1, qos0 }: FloodResult, redelivery = false): void {
    const expected = new Set<string>()
    for (let i = 0; i < PUBLISHERS; i++) {
      for (let seq = 0; seq < PER_PUBLISHER; seq++) expected.add(`${i}:${seq}`)
    }
    const got = new Set(qos1.map((m) => m.payload))
    const missing = [...expected].filter((k) => !got.has(k))
    expect(missing, `${missing.length} QoS 1 messages missing`).toEqual([])
    if (!redelivery) {
      // at-least-once allows a duplicate, but a subscriber that stays connected has no reason to get one
      expect(qos1.length, 'QoS 1 duplicates').toBe(TOTAL_QOS1)
    }
    expect(qos1.filter((m) => m.qos !== 1).length, 'QoS 1 messages delivered below QoS 1').toBe(0)
    expect(qos0.filter((m) => m.qos !== 0).length, 'QoS 0 messages delivered above QoS 0').toBe(0)
    const inOrder = Array.from({ length: PER_PUBLISHER }, (_, s) => s)
    for (let i = 0; i < PUBLISHERS; i++) {
      const seqs = qos1.filter((m) => m.payload.startsWith(`${i}:`)).map((m) => Number(m.payload.split(':')[1]))
      const firsts = seqs.filter((s, at) => seqs.indexOf(s) === at)
      const outOfOrder = firsts.flatMap((s, at) => at > 0 && s < firsts[at - 1]! ? [`${firsts[at - 1]} then ${s}`] : [])
      expect(outOfOrder.slice(0, 10), `publisher ${i}'s QoS 1 messages out of order (${outOfOrder.length} places)`).toEqual([])
      expect(firsts, `order of publisher ${i}'s QoS 1 messages`).toEqual(inOrder)
    }
  }

  it('delivers every QoS 1 message to a clean-session subscriber while QoS 0 floods it', async () => {
    b = await startBroker()
    const p = uniqueTopic('flood')
    const sub = await clients.connect(b.url, { clientId: 'flood-sub', clean: true })
    await sub.client.subscribeAsync(`${p}/#`, { qos: 1 })
    await flood(b.url, p)
    expectAllQos1(await collect(sub.messages))
  })

  it('delivers every QoS 1 message to a persistent-session subscriber while QoS 0 floods it', async () => {
    b = await startBroker()
    const p = uniqueTopic('flood-persist')
    const sub = await clients.connect(b.url, { clientId: 'flood-persist-sub', clean: false })
    await sub.client.subscribeAsync(`${p}/#`, { qos: 1 })
    await flood(b.url, p)
    expectAllQos1(await collect(sub.messages))
    // every QoS 1 message was acknowledged: nothing stays queued for the session
    await waitUntil(() => (b!.broker.stats().queuedMessages['flood-persist-sub'] ?? 0) === 0, 'an empty session queue', 10_000,
      () => JSON.stringify(b!.broker.stats().queuedMessages))
  })

  it('delivers every QoS 1 message, in order per publisher, to a persistent-session subscriber that reconnects mid-flood', async () => {
    b = await startBroker()
    const p = uniqueTopic('flood-reconnect')
    const id = 'flood-reconnect-sub'
    const first = await clients.connect(b.url, { clientId: id, clean: false })
    await first.client.subscribeAsync(`${p}/#`, { qos: 1 })
    const flooding = flood(b.url, p)
    await waitUntil(() => first.messages.length >= 1000, 'the first 1,000 messages', 20_000)
    await first.client.endAsync()
    // back while the flood goes on: its queued messages and live ones meet; one list for both connections
    const second = await clients.connect(b.url, { clientId: id, clean: false }, first.messages)
    expect(second.connack.sessionPresent).toBe(true)
    await flooding
    expectAllQos1(await collect(first.messages, true), true)
  })
})
