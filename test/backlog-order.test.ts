// A persistent-session subscriber that reconnects to a backlog while
// publishers go on at full speed: order holds at every queue depth, also at
// the queue limit [MQTT-4.6.0-6], and the limit drops the oldest messages,
// counted (docs/durability.md, "Queue limit").
import { afterEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { connectCollecting, type Received } from './helpers/connect.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { waitUntil } from './helpers/wait.js'

let b: TestBroker | null = null
const clients: MqttClient[] = []

afterEach(async () => {
  await Promise.all(clients.splice(0).map(async (c) => c.endAsync(true)))
  await b?.close()
  b = null
})

/** Per publisher, the sequence numbers received, in arrival order. */
function byPublisher (received: Received[]): Map<string, number[]> {
  const seen = new Map<string, number[]>()
  for (const { topic, payload } of received) {
    const publisher = topic.slice(topic.lastIndexOf('/') + 1)
    let list = seen.get(publisher)
    if (list === undefined) seen.set(publisher, list = [])
    list.push(Number(payload))
  }
  return seen
}

/** Where a sequence goes back (a redelivery of an older one excepted: the same number seen before). */
function firstDisorder (seqs: number[]): string | null {
  let highest = -1
  const seen = new Set<number>()
  for (let i = 0; i < seqs.length; i++) {
    const n = seqs[i] as number
    if (n < highest && !seen.has(n)) return `${n} after ${highest} (at ${i})`
    seen.add(n)
    highest = Math.max(highest, n)
  }
  return null
}

async function publishNumbered (pub: MqttClient, topic: string, from: number, to: number, window = 50): Promise<void> {
  let next = from
  await Promise.all(Array.from({ length: window }, async () => {
    while (next < to) {
      const n = next++
      await pub.publishAsync(topic, String(n), { qos: 1 })
    }
  }))
}

describe('backlog order at the queue limit', () => {
  for (const maxQueuedPerClient of [40, 0]) {
    it(`keeps per-publisher order while a backlog is handed over under load (maxQueuedPerClient ${maxQueuedPerClient})`, async () => {
      b = await startBroker({ maxQueuedPerClient })
      const root = uniqueTopic('order')
      const sub = await connectCollecting(b.url, { clientId: `${root}-sub`, clean: false })
      await sub.client.subscribeAsync(`${root}/#`, { qos: 1 })
      await sub.client.endAsync()

      const pubs = await Promise.all(['p1', 'p2'].map(async (id) => (await connectCollecting(b!.url, { clientId: `${root}-${id}` })).client))
      clients.push(...pubs)
      // A backlog beyond the limit, then the subscriber comes back while both go on.
      await Promise.all(pubs.map(async (p, i) => publishNumbered(p, `${root}/p${i + 1}`, 0, 200)))
      const again = await connectCollecting(b.url, { clientId: `${root}-sub`, clean: false })
      clients.push(again.client)
      await Promise.all(pubs.map(async (p, i) => publishNumbered(p, `${root}/p${i + 1}`, 200, 600)))
      // Each of the 1,200 messages is delivered or dropped at the limit (the
      // oldest go: one may be both, dropped while it waited for its PUBACK).
      const distinct = (): number => [...byPublisher(again.received).values()].reduce((n, s) => n + new Set(s).size, 0)
      const queued = (): number => b!.broker.stats().queuedMessages[`${root}-sub`] ?? 0
      await waitUntil(() => distinct() + b!.broker.stats().droppedMessages >= 1200 && queued() === 0, 'every message delivered or dropped', 20_000,
        () => `delivered ${distinct()}, dropped ${b!.broker.stats().droppedMessages}, queued ${queued()}`)

      for (const [publisher, seqs] of byPublisher(again.received)) {
        expect(firstDisorder(seqs), `order of ${publisher}`).toBeNull()
      }
      const stats = b.broker.stats()
      if (maxQueuedPerClient === 0) {
        expect(stats.droppedMessages).toBe(0)
        // Nothing lost: all 600 of each publisher came through.
        for (const seqs of byPublisher(again.received).values()) expect(new Set(seqs).size).toBe(600)
      } else {
        // The backlog alone was 400 for a queue of 40.
        expect(stats.droppedMessages).toBeGreaterThanOrEqual(400 - maxQueuedPerClient)
        expect(stats.limits.maxQueuedPerClient).toBe(stats.droppedMessages)
      }
    })
  }
})

// Tripwire for broker/mqtt/internals/journal-settlement.ts: it finds the
// client's packet (which carries the journal entry) from the copy Aedes
// queues (aedes.js `enqueueOffline`) by its payload Buffer. If aedes-packet
// stopped passing the payload by reference, journal entries would go after
// the live deliveries again, and a crash at the queue limit would replay
// dropped messages behind newer ones (docs/durability.md, "Queue limit").
describe('journal entry settled with the enqueue (tripwire)', () => {
  it('aedes-packet keeps the client packet\'s payload Buffer in the copy Aedes queues', async () => {
    const { default: AedesPacket } = await import('aedes-packet') as unknown as { default: new (original: object, broker: object) => { payload: unknown } }
    const original = { cmd: 'publish', topic: 'a/b', payload: Buffer.from('x'), qos: 1, retain: false, dup: false }
    expect(new AedesPacket(original, { id: 'b', counter: 0 }).payload).toBe(original.payload)
  })
})
