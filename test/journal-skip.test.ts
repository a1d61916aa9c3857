import { afterEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { persistenceWriteSeconds } from '../broker/observability/fixed-histogram.js'
import { startBrokerProcess } from './helpers/broker-process.js'
import { crashTestClients } from './helpers/crash-clients.js'
import { connectCollecting, type Received } from './helpers/connect.js'
import { Clients, waitForMessages } from './helpers/mqtt-helpers.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { waitUntil } from './helpers/wait.js'

/*
 * A client's QoS 1 publish is written before its PUBACK only when it has a
 * durable destination: retained or a persistent session's queue (the
 * journal), a shared group's queue (the group's own append), docs/durability.md
 * "What is journaled". These tests show both sides: what has such a
 * destination still survives kill -9 right after its PUBACK, and what has
 * none costs no LevelDB write at all.
 */

/**
 * Publishes QoS 1 messages numbered 0, 1, 2... to `topics` in turn, `window`
 * in flight, until every topic has `each` PUBACKs; returns the acknowledged
 * numbers at that moment, with the rest still in flight (a copy: PUBACKs
 * read later do not join it).
 */
async function publishUntilEachAcked (pub: MqttClient, topics: string[], each: number, window = 100): Promise<Set<number>> {
  const acked = new Set<number>()
  const perTopic = topics.map(() => 0)
  const inflight = new Set<Promise<void>>()
  let next = 0
  while (perTopic.some((n) => n < each)) {
    while (inflight.size < window) {
      const n = next++
      const p: Promise<void> = pub.publishAsync(topics[n % topics.length] as string, String(n), { qos: 1 })
        .then(() => { acked.add(n); perTopic[n % topics.length] = (perTopic[n % topics.length] ?? 0) + 1 }, () => undefined)
        .finally(() => inflight.delete(p))
      inflight.add(p)
    }
    await Promise.race(inflight)
  }
  return new Set(acked)
}

describe('journal skipped without a durable destination: kill -9', () => {
  const { connect, track } = crashTestClients()

  it('delivers every PUBACKed message to persistent sessions, groups and dead letters, interleaved with clean-only publishes', async () => {
    const broker = await startBrokerProcess()

    // durable/: a persistent session away at the kill, and a clean subscriber online.
    const away = await connect(broker.url, 'away', false)
    await away.subscribeAsync('durable/#', { qos: 1 })
    await away.endAsync()
    // grouped/: a group whose only member left (its queue keeps the messages), and a clean subscriber.
    const member = await connect(broker.url, 'member', true)
    await member.subscribeAsync('$share/g/grouped/#', { qos: 1 })
    await member.endAsync()
    // fleeting/: clean subscribers only: not journaled, and nothing to keep after a crash.
    const live = await connect(broker.url, 'live', true)
    await live.subscribeAsync({ 'durable/#': { qos: 1 }, 'grouped/#': { qos: 1 }, 'fleeting/#': { qos: 1 } })

    // tasks/{unknown type} is dead-lettered by the gate to $fleetq/dead/{type}, which the built-in dead-letter group keeps.
    const topics = ['durable/a', 'grouped/a', 'fleeting/a', 'tasks/no-such-type']
    const pub = await connect(broker.url, 'pub', true)
    pub.on('error', () => undefined)
    // Killed at the first PUBACKs, with a window more in flight: the queue
    // and group writes of the acknowledged messages are then still to come
    // (without a write before the PUBACK, every class lost messages).
    const acked = await publishUntilEachAcked(pub, topics, 10)
    await broker.kill()
    const ackedOn = (i: number): number[] => [...acked].filter((n) => n % topics.length === i)

    await broker.restart()
    const awayAgain = await connectCollecting(broker.url, { clientId: 'away', clean: false })
    track(awayAgain.client)
    const worker = await connectCollecting(broker.url, { clientId: 'member-again' })
    track(worker.client)
    await worker.client.publishAsync('$fleetq/share/prefetch', JSON.stringify({ prefetch: 500 }), { qos: 1 })
    await worker.client.subscribeAsync({ '$share/g/grouped/#': { qos: 1 }, '$share/dead-letters/$fleetq/dead/+': { qos: 1 } })

    const numbers = (got: Received[], topic: (t: string) => boolean, value: (m: Received) => number): Set<number> =>
      new Set(got.filter((m) => topic(m.topic)).map(value))
    const plain = (m: Received): number => Number(m.payload)
    const fromRecord = (m: Received): number => Number((JSON.parse(m.payload) as { payload: string }).payload)
    const missing = (want: number[], got: Set<number>): number[] => want.filter((n) => !got.has(n))
    const missingDurable = (): number[] => missing(ackedOn(0), numbers(awayAgain.received, (t) => t.startsWith('durable/'), plain))
    const missingGrouped = (): number[] => missing(ackedOn(1), numbers(worker.received, (t) => t.startsWith('grouped/'), plain))
    const missingDead = (): number[] => missing(ackedOn(3), numbers(worker.received, (t) => t.startsWith('$fleetq/dead/'), fromRecord))
    await waitUntil(() => missingDurable().length === 0 && missingGrouped().length === 0 && missingDead().length === 0,
      () => `every acknowledged message kept (missing: persistent session ${missingDurable().length}, group ${missingGrouped().length}, dead letters ${missingDead().length})`, 45_000)
    expect(missingDurable()).toEqual([])
    expect(missingGrouped()).toEqual([])
    expect(missingDead()).toEqual([])
    for (const i of [0, 1, 3]) expect(ackedOn(i).length).toBeGreaterThanOrEqual(10)
  })
})

describe('journal skipped without a durable destination: no write', () => {
  const clients = new Clients()
  let b: TestBroker | null = null
  afterEach(async () => {
    await clients.closeAll()
    await b?.close()
    b = null
  })

  /** LevelDB batches this process wrote (every write batcher observes each batch it writes). */
  const batches = (): number => persistenceWriteSeconds.snapshot().count

  it('a QoS 1 publish that only clean sessions receive writes nothing; retained or with a persistent subscriber it does', async () => {
    // No $SYS/ rounds: they store retained messages.
    b = await startBroker({ sysIntervalSeconds: 0 })
    const topic = uniqueTopic('fanin')
    const sub = await clients.connect(b.url, { clean: true })
    await sub.client.subscribeAsync(`${topic}/+`, { qos: 1 })
    const pub = await clients.connect(b.url)

    const before = batches()
    const count = 50
    await Promise.all(Array.from({ length: count }, async (_, i) => { await pub.client.publishAsync(`${topic}/${i % 4}`, `m${i}`, { qos: 1 }) }))
    await waitForMessages(sub.messages, count, 'the QoS 1 publishes at the clean subscriber')
    // Every PUBACK is in: a journal entry would have been written before its PUBACK.
    expect(batches() - before).toBe(0)

    // Retained: journaled (and stored).
    const retainedAt = batches()
    await pub.client.publishAsync(`${topic}/kept`, 'kept', { qos: 1, retain: true })
    expect(batches()).toBeGreaterThan(retainedAt)

    // With a persistent session's QoS 1 subscription on the topic: journaled.
    const persistent = await clients.connect(b.url, { clientId: uniqueTopic('persistent'), clean: false })
    await persistent.client.subscribeAsync(`${topic}/0`, { qos: 1 })
    const persistentAt = batches()
    await pub.client.publishAsync(`${topic}/0`, 'durable', { qos: 1 })
    expect(batches()).toBeGreaterThan(persistentAt)
    await waitForMessages(persistent.messages, 1, 'the message at the persistent session')
  })

  it('a QoS 1 publish a shared group matches is stored by the group before its PUBACK, with no member online', async () => {
    b = await startBroker({ sysIntervalSeconds: 0 })
    const topic = uniqueTopic('jobs')
    const member = await clients.connect(b.url)
    await member.client.subscribeAsync(`$share/w/${topic}/+`, { qos: 1 })
    await member.client.endAsync()
    const pub = await clients.connect(b.url)
    const at = batches()
    await pub.client.publishAsync(`${topic}/1`, 'job', { qos: 1 })
    // The PUBACK waited for the group's append (docs/durability.md, "Stored by its group").
    expect(batches()).toBeGreaterThan(at)
    expect(b.broker.stats().sharedGroups.find((g) => g.group === 'w')?.depth).toBe(1)
  })
})
