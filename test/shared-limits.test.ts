import { afterEach, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { connectCollecting } from './helpers/connect.js'
import { RawClient } from './helpers/raw-client.js'
import { waitUntil } from './helpers/wait.js'

describe('shared subscription groups: bounds, expiry, deletion, unsubscribe', () => {
  let b: TestBroker | undefined
  const clients: MqttClient[] = []
  const raws: RawClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    for (const r of raws.splice(0)) r.destroy()
    await b?.close()
    b = undefined
  })

  const group = (key: string): ReturnType<TestBroker['broker']['stats']>['sharedGroups'][number] | undefined =>
    b!.broker.stats().sharedGroups.find((g) => g.key === key)

  async function createEmptyGroup (filter: string): Promise<void> {
    const r = await RawClient.connect(b!.port, `creator-${filter.length}`)
    expect(await r.subscribe(filter, 1)).toBe(1)
    await r.end()
  }

  async function publish (topic: string, payloads: string[]): Promise<void> {
    const pub = await mqtt.connectAsync(b!.url, { protocolVersion: 4, reconnectPeriod: 0 })
    clients.push(pub)
    for (const p of payloads) await pub.publishAsync(topic, p, { qos: 1 })
  }

  it('drop-oldest keeps the newest maxLength messages and counts the rest', async () => {
    b = await startBroker({ shared: { groups: { small: { maxLength: 3, overflow: 'drop-oldest' } } } })
    const topic = uniqueTopic('q')
    await createEmptyGroup(`$share/small/${topic}`)
    await publish(topic, ['1', '2', '3', '4', '5'])
    await waitUntil(() => group(`small/${topic}`)?.counters.overflowed === 2, 'two overflows')
    const m = await connectCollecting(b.url, { clientId: 'reader' })
    clients.push(m.client)
    await m.client.subscribeAsync(`$share/small/${topic}`, { qos: 1 })
    await waitUntil(() => m.received.length === 3, 'the three kept')
    expect(m.received.map((r) => r.payload)).toEqual(['3', '4', '5'])
  })

  it('drop-new keeps the oldest maxLength messages', async () => {
    b = await startBroker({ shared: { groups: { small: { maxLength: 2, overflow: 'drop-new' } } } })
    const topic = uniqueTopic('q')
    await createEmptyGroup(`$share/small/${topic}`)
    await publish(topic, ['1', '2', '3'])
    await waitUntil(() => group(`small/${topic}`)?.counters.overflowed === 1, 'one overflow')
    const m = await connectCollecting(b.url, { clientId: 'reader' })
    clients.push(m.client)
    await m.client.subscribeAsync(`$share/small/${topic}`, { qos: 1 })
    await waitUntil(() => m.received.length === 2, 'the two kept')
    expect(m.received.map((r) => r.payload)).toEqual(['1', '2'])
  })

  it('messages past messageTtlMs are dropped and counted, never delivered', async () => {
    b = await startBroker({ shared: { groups: { ttl: { messageTtlMs: 200 } } } })
    const topic = uniqueTopic('q')
    await createEmptyGroup(`$share/ttl/${topic}`)
    await publish(topic, ['old-1', 'old-2'])
    await waitUntil(() => group(`ttl/${topic}`)?.counters.expired === 2, 'expiry by the sweep', 5000)
    expect(group(`ttl/${topic}`)?.depth).toBe(0)
    // the reader is there before 'fresh' is published, so it is dispatched at
    // once rather than racing the 200 ms TTL on a loaded machine
    const m = await connectCollecting(b.url, { clientId: 'reader' })
    clients.push(m.client)
    await m.client.subscribeAsync(`$share/ttl/${topic}`, { qos: 1 })
    await publish(topic, ['fresh'])
    await waitUntil(() => m.received.length === 1, 'the fresh message')
    expect(m.received.map((r) => r.payload)).toEqual(['fresh'])
  })

  it('an idle group is deleted after idleTimeoutMs; deleting a group with members is refused', async () => {
    b = await startBroker({ shared: { groups: { idle: { idleTimeoutMs: 300 } } } })
    const topic = uniqueTopic('q')
    const member = await RawClient.connect(b.port, 'member')
    raws.push(member)
    await member.subscribe(`$share/idle/${topic}`, 1)
    await expect(b.broker.deleteSharedGroup('idle', topic)).rejects.toMatchObject({ code: 'FLEETQ_GROUP_HAS_MEMBERS' })
    await member.end()
    await waitUntil(() => group(`idle/${topic}`) === undefined, 'the idle group to go', 5000)
    await expect(b.broker.deleteSharedGroup('idle', topic)).rejects.toMatchObject({ code: 'FLEETQ_GROUP_NOT_FOUND' })
  })

  it('deleteSharedGroup removes the queue and its messages, also from disk', async () => {
    b = await startBroker()
    const topic = uniqueTopic('q')
    await createEmptyGroup(`$share/gone/${topic}`)
    await publish(topic, ['a', 'b'])
    await waitUntil(() => group(`gone/${topic}`)?.depth === 2, 'two waiting')
    await b.broker.deleteSharedGroup('gone', topic)
    await b.restart()
    expect(group(`gone/${topic}`)).toBeUndefined()
  })

  it('a member that unsubscribes gives its unacknowledged messages back, to be redelivered with DUP', async () => {
    b = await startBroker()
    const topic = uniqueTopic('q')
    const leaver = await RawClient.connect(b.port, 'leaver')
    raws.push(leaver)
    await leaver.subscribe(`$share/u/${topic}`, 1)
    await publish(topic, ['x', 'y'])
    await waitUntil(() => leaver.received.length === 2, 'the leaver to hold two')
    const other = await connectCollecting(b.url, { clientId: 'other' })
    clients.push(other.client)
    await other.client.subscribeAsync(`$share/u/${topic}`, { qos: 1 })
    await leaver.unsubscribe(`$share/u/${topic}`)
    await waitUntil(() => other.received.length === 2, 'redelivery to the other member')
    expect(other.received.map((r) => [r.payload, r.packet.dup])).toEqual([['x', true], ['y', true]])
  })

  it('task envelopes carry their delivery count', async () => {
    b = await startBroker({ shared: { defaults: { ackTimeoutMs: 200 } } })
    const topic = uniqueTopic('tasks')
    const first = await RawClient.connect(b.port, 'first')
    raws.push(first)
    await first.subscribe(`$share/w/${topic}`, 1)
    await publish(topic, [JSON.stringify({ id: 't1', type: 'thumbnail', payload: {} })])
    await waitUntil(() => first.received.length === 1, 'first delivery')
    expect(JSON.parse(first.received[0]!.payload)).toMatchObject({ id: 't1', deliveryCount: 1 })
    first.destroy()
    const second = await connectCollecting(b.url, { clientId: 'second' })
    clients.push(second.client)
    await second.client.subscribeAsync(`$share/w/${topic}`, { qos: 1 })
    await waitUntil(() => second.received.length === 1, 'redelivery')
    expect(JSON.parse(second.received[0]!.payload)).toMatchObject({ id: 't1', deliveryCount: 2 })
  })
})
