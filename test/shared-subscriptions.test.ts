import { afterEach, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { connectCollecting, type Received } from './helpers/connect.js'
import { RawClient } from './helpers/raw-client.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

describe('shared subscriptions ($share/{group}/{filter})', () => {
  let b: TestBroker | undefined
  const clients: MqttClient[] = []
  const raws: RawClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    for (const r of raws.splice(0)) r.destroy()
    await b?.close()
    b = undefined
  })

  async function member (clientId: string, filter: string, clean = true): Promise<{ client: MqttClient, received: Received[] }> {
    const m = await connectCollecting(b!.url, { clientId, clean })
    clients.push(m.client)
    await m.client.subscribeAsync(filter, { qos: 1 })
    return m
  }

  async function raw (clientId: string, clean = true): Promise<RawClient> {
    const r = await RawClient.connect(b!.port, clientId, clean)
    raws.push(r)
    return r
  }

  async function publisher (): Promise<MqttClient> {
    const p = await mqtt.connectAsync(b!.url, { protocolVersion: 4, reconnectPeriod: 0 })
    clients.push(p)
    return p
  }

  async function publishAll (pub: MqttClient, topicOf: (i: number) => string, count: number, from = 0): Promise<void> {
    const window = 100
    for (let start = from; start < from + count; start += window) {
      const batch: Array<Promise<unknown>> = []
      for (let i = start; i < Math.min(start + window, from + count); i++) batch.push(pub.publishAsync(topicOf(i), String(i), { qos: 1 }))
      await Promise.all(batch)
    }
  }

  const numbers = (list: Array<{ payload: string }>): number[] => list.map((m) => Number(m.payload))

  it('3 members, 3,000 QoS 1 messages: each to exactly one member, all acknowledged, loads within 10% of even', async () => {
    b = await startBroker()
    const topic = uniqueTopic('jobs')
    const members = await Promise.all(['w1', 'w2', 'w3'].map((id) => member(id, `$share/workers/${topic}/#`)))
    const pub = await publisher()
    await publishAll(pub, (i) => `${topic}/${i % 10}`, 3000)

    const total = (): number => members.reduce((n, m) => n + m.received.length, 0)
    await waitUntil(() => total() >= 3000, '3,000 deliveries')
    const group = (): NonNullable<ReturnType<typeof findGroup>> => findGroup(b!, `workers/${topic}/#`)!
    await waitUntil(() => group().counters.acked === 3000, 'all 3,000 acknowledged')
    await expectNothingFor(300, () => total() > 3000, `more than 3,000 deliveries (${total()})`)

    const all = members.flatMap((m) => numbers(m.received)).sort((a, x) => a - x)
    expect(all).toEqual(Array.from({ length: 3000 }, (_, i) => i))
    for (const m of members) {
      expect(m.received.length).toBeGreaterThanOrEqual(900)
      expect(m.received.length).toBeLessThanOrEqual(1100)
    }
    expect(group()).toMatchObject({ depth: 0, inflight: 0, counters: { delivered: 3000, acked: 3000, redelivered: 0 } })
  })

  it('a member that disconnects with unacknowledged messages: the others get them; only those are duplicated', async () => {
    b = await startBroker({ shared: { defaults: { prefetch: 5 } } })
    const topic = uniqueTopic('jobs')
    const quitter = await raw('quitter')
    await quitter.subscribe(`$share/g/${topic}`, 1)
    const pub = await publisher()
    // only the quitter is a member: it takes its window of 5 and acks none
    await publishAll(pub, () => topic, 5)
    await waitUntil(() => quitter.received.length === 5, 'the quitter to hold 5')
    const stay = await member('stay', `$share/g/${topic}`)
    await publishAll(pub, () => topic, 95, 5)
    quitter.destroy()

    await waitUntil(() => stay.received.length >= 100, 'all 100 at the remaining member')
    await expectNothingFor(300, () => stay.received.length > 100, 'extra deliveries')
    expect(numbers(stay.received).sort((a, x) => a - x)).toEqual(Array.from({ length: 100 }, (_, i) => i))
    const duplicated = stay.received.filter((m) => m.packet.dup).map((m) => Number(m.payload)).sort((a, x) => a - x)
    expect(duplicated).toEqual(numbers(quitter.received).sort((a, x) => a - x))
  })

  it('a member that never acknowledges: after the lease its messages go to another member with DUP; its late ack is ignored', async () => {
    b = await startBroker({ shared: { defaults: { ackTimeoutMs: 300, prefetch: 2 } } })
    const topic = uniqueTopic('jobs')
    const stuck = await raw('stuck')
    await stuck.subscribe(`$share/g/${topic}`, 1)
    const pub = await publisher()
    await publishAll(pub, () => topic, 2)
    await waitUntil(() => stuck.received.length === 2, 'the stuck member to hold 2')
    const healthy = await member('healthy', `$share/g/${topic}`)
    await waitUntil(() => healthy.received.length === 2, 'redelivery after the lease', 10_000)
    expect(healthy.received.map((m) => m.packet.dup)).toEqual([true, true])
    expect(numbers(healthy.received).sort()).toEqual([0, 1])

    // the late PUBACK frees the stuck member's slot but settles nothing
    stuck.puback(stuck.received[0]!.messageId)
    const stats = (): NonNullable<ReturnType<typeof findGroup>> => findGroup(b!, `g/${topic}`)!
    await waitUntil(() => stats().counters.lateAcks === 1, 'the late ack to be counted')
    await waitUntil(() => stats().counters.acked === 2, 'the healthy member\'s acks')
    expect(stats().counters).toMatchObject({ enqueued: 2, delivered: 4, acked: 2, redelivered: 2, lateAcks: 1 })
  })

  it('leases taken at different times each run out on their own: the group\'s one lease timer re-arms for the next', async () => {
    b = await startBroker({ shared: { defaults: { ackTimeoutMs: 300, prefetch: 2 } } })
    const topic = uniqueTopic('jobs')
    const stuck = await raw('stuck')
    await stuck.subscribe(`$share/g/${topic}`, 1)
    const pub = await publisher()
    await pub.publishAsync(topic, '0', { qos: 1 })
    await waitUntil(() => stuck.received.length === 1, 'the stuck member to hold the first')
    // The second lease starts well after the first, so it is not yet over when the first runs out.
    await expectNothingFor(150, () => stuck.received.length > 1, 'another delivery')
    await pub.publishAsync(topic, '1', { qos: 1 })
    await waitUntil(() => stuck.received.length === 2, 'the stuck member to hold the second')
    // Nothing is sent in between (the stuck member keeps its slots), so only the timer itself can re-arm for the second lease.
    const counters = (): { redelivered: number } => findGroup(b!, `g/${topic}`)!.counters
    await waitUntil(() => counters().redelivered === 2, 'both leases to run out', 10_000)
    const healthy = await member('healthy', `$share/g/${topic}`)
    await waitUntil(() => healthy.received.length === 2, 'both redelivered', 10_000)
    expect(healthy.received.map((m) => [String(m.payload), m.packet.dup])).toEqual([['0', true], ['1', true]])
    expect(findGroup(b, `g/${topic}`)!.counters).toMatchObject({ enqueued: 2, redelivered: 2 })
  })

  it('with no members, 1,000 messages wait in the group across a restart and all reach the first member', async () => {
    b = await startBroker()
    const topic = uniqueTopic('jobs')
    const first = await member('first', `$share/g/${topic}/#`)
    await first.client.endAsync()
    clients.splice(clients.indexOf(first.client), 1)
    const pub = await publisher()
    await publishAll(pub, (i) => `${topic}/${i % 3}`, 1000)
    // PUBACK comes once the message is journaled; it reaches the group just after
    await waitUntil(() => findGroup(b!, `g/${topic}/#`)?.depth === 1000, 'the group to hold 1,000')
    await b.restart()

    const later = await member('later', `$share/g/${topic}/#`)
    await waitUntil(() => later.received.length >= 1000, '1,000 queued messages')
    await expectNothingFor(300, () => later.received.length > 1000, 'duplicates')
    expect(numbers(later.received)).toEqual(Array.from({ length: 1000 }, (_, i) => i))
  })

  it('prefetch: a member with a window of 2 never holds more than 2 unacknowledged messages', async () => {
    b = await startBroker()
    const topic = uniqueTopic('jobs')
    const m = await raw('windowed')
    await m.subscribe(`$share/g/${topic}`, 1)
    m.publish('$fleetq/share/prefetch', JSON.stringify({ prefetch: 2 }), 1)
    await waitUntil(() => findGroup(b!, `g/${topic}`)?.members[0]?.prefetch === 2, 'the window to be set')
    let held = 0
    let maxHeld = 0
    m.on('publish', (p) => {
      held++
      maxHeld = Math.max(maxHeld, held)
      // acknowledge later, one at a time, so the window stays full
      setImmediate(() => { held--; m.puback(p.messageId) })
    })
    const pub = await publisher()
    await publishAll(pub, () => topic, 200)
    await waitUntil(() => m.received.length >= 200, '200 deliveries')
    expect(maxHeld).toBe(2)
    expect(numbers(m.received)).toEqual(Array.from({ length: 200 }, (_, i) => i))
  })

  it('hash strategy keeps each topic on one member; plain subscribers and a client with both subscriptions get their copies', async () => {
    b = await startBroker({ shared: { groups: { devices: { strategy: 'hash' } } } })
    const topic = uniqueTopic('fleet')
    const members = await Promise.all(['h1', 'h2', 'h3'].map((id) => member(id, `$share/devices/${topic}/+`)))
    const watcher = await member('watcher', `${topic}/#`)
    const both = await member('both', `$share/devices/${topic}/+`)
    await both.client.subscribeAsync(`${topic}/+`, { qos: 1 })
    const pub = await publisher()
    await publishAll(pub, (i) => `${topic}/dev${i % 8}`, 400)

    const sharedReceivers = [...members, both]
    const sharedCopies = (): Received[] => sharedReceivers.flatMap((m) => m.received.filter((r) => r !== undefined))
    await waitUntil(() => watcher.received.length >= 400, 'the plain subscriber to get all 400')
    // "both" gets its plain copy of all 400 plus its share of the group's
    await waitUntil(() => members.reduce((n, m) => n + m.received.length, 0) + both.received.length >= 800, 'group and plain copies')
    expect(sharedCopies().length).toBe(800)
    for (let d = 0; d < 8; d++) {
      const owners = members.filter((m) => m.received.some((r) => r.topic === `${topic}/dev${d}`))
      // a device's messages all went to one member (or to "both", checked below)
      expect(owners.length).toBeLessThanOrEqual(1)
      const inOrder = sharedReceivers.flatMap((m) => numbers(m.received.filter((r) => r.topic === `${topic}/dev${d}`)))
      expect(inOrder.length).toBeGreaterThanOrEqual(50)
    }
    const bothDevices = new Set(both.received.map((r) => r.topic))
    expect(bothDevices.size).toBe(8) // its plain subscription sees every device
  })

  it('refuses to publish to $share/ topics, does not send retained messages to a shared subscription, and refuses bad filters', async () => {
    b = await startBroker()
    const topic = uniqueTopic('state')
    const pub = await publisher()
    await pub.publishAsync(`${topic}/a`, 'retained', { qos: 1, retain: true })
    const m = await raw('member')
    expect(await m.subscribe(`$share/g/${topic}/#`, 1)).toBe(1)
    // Filters with a misplaced wildcard are protocol errors Aedes rejects by
    // disconnecting; these are valid filters but not valid shares: SUBACK 0x80.
    expect(await m.subscribe('$share/onlygroup', 1)).toBe(128)
    expect(await m.subscribe('$share//t', 1)).toBe(128)
    await expectNothingFor(300, () => m.received.length > 0, 'a retained message sent to a shared subscription')

    const offender = await mqtt.connectAsync(b.url, { protocolVersion: 4, reconnectPeriod: 0 })
    const closed = new Promise<void>((resolve) => offender.once('close', () => resolve()))
    offender.publish(`$share/g/${topic}/a`, 'x', { qos: 1 })
    await closed // Aedes drops a 3.1.1 client whose publish is refused (no negative PUBACK before MQTT 5)
    await offender.endAsync(true)
    expect(m.received).toEqual([])
  })
})

function findGroup (b: TestBroker, key: string): ReturnType<TestBroker['broker']['stats']>['sharedGroups'][number] | undefined {
  return b.broker.stats().sharedGroups.find((g) => g.key === key)
}
