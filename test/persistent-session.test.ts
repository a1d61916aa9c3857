import { afterEach, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { connectCollecting } from './helpers/connect.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

const opts = { protocolVersion: 4 as const, reconnectPeriod: 0 }

describe('persistent sessions', () => {
  let b: TestBroker | undefined
  const clients: MqttClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    await b?.close()
  })

  async function connect (clientId: string, clean: boolean): Promise<MqttClient> {
    const client = await mqtt.connectAsync(b!.url, { ...opts, clientId, clean })
    clients.push(client)
    return client
  }

  it('queues 1,000 QoS 1 messages for an offline subscriber across a restart: all, in order, none twice', async () => {
    b = await startBroker()
    const topic = uniqueTopic('session')
    const sub = await connect('offline-sub', false)
    await sub.subscribeAsync(`${topic}/#`, { qos: 1 })
    await sub.endAsync()

    const pub = await connect('pub', true)
    for (let i = 0; i < 1000; i++) {
      // awaiting each PUBACK keeps the publish order the order of arrival
      await pub.publishAsync(`${topic}/n`, String(i), { qos: 1 })
    }
    await pub.endAsync()
    await b.restart()

    const again = await connectCollecting(b.url, { clientId: 'offline-sub', clean: false })
    clients.push(again.client)
    const received = (): number[] => again.received.map((m) => Number(m.payload))
    await waitUntil(() => received().length >= 1000, '1,000 queued messages')
    // window to catch a duplicate sent after the last expected message
    await expectNothingFor(300, () => received().length > 1000, `more than 1,000 messages (${received().length})`)
    expect(received()).toEqual(Array.from({ length: 1000 }, (_, i) => i))
  })

  it('keeps subscriptions and retained messages across a restart', async () => {
    b = await startBroker()
    const topic = uniqueTopic('keep')
    const sub = await connect('keeper', false)
    await sub.subscribeAsync(`${topic}/live`, { qos: 1 })
    await sub.endAsync()
    const pub = await connect('pub', true)
    await pub.publishAsync(`${topic}/state`, 'on', { qos: 1, retain: true })
    await pub.endAsync()

    await b.restart()

    const pub2 = await connect('pub2', true)
    await pub2.publishAsync(`${topic}/live`, 'after-restart', { qos: 1 })
    const back = await connectCollecting(b.url, { clientId: 'keeper', clean: false })
    clients.push(back.client)
    const got = (): string[] => back.received.map((m) => `${m.topic}=${m.payload}${m.packet.retain ? ' (retained)' : ''}`)
    await waitUntil(() => got().length >= 1, 'the message queued after restart')
    await back.client.subscribeAsync(`${topic}/state`, { qos: 1 })
    await waitUntil(() => got().length >= 2, 'the retained message')
    await expectNothingFor(300, () => got().length > 2, `a duplicate: ${got().join(', ')}`)
    expect(got()).toEqual([`${topic}/live=after-restart`, `${topic}/state=on (retained)`])
  })

  it('resends an unacknowledged message on reconnect with the DUP flag', async () => {
    b = await startBroker()
    const topic = uniqueTopic('dup')
    const first: boolean[] = []
    const sub = await mqtt.connectAsync(b.url, { ...opts, clientId: 'no-ack', clean: false })
    clients.push(sub)
    // mqtt.js sends the PUBACK when handleMessage calls back (customHandleAcks
    // is MQTT 5 only); never calling back keeps the message in flight.
    sub.handleMessage = (packet) => { if (packet.cmd === 'publish') first.push(packet.dup) }
    await sub.subscribeAsync(topic, { qos: 1 })
    const pub = await connect('pub', true)
    await pub.publishAsync(topic, 'x', { qos: 1 })
    await waitUntil(() => first.length === 1, 'first delivery')
    sub.stream.destroy()
    await waitUntil(() => b!.broker.aedes.connectedClients === 1, 'the broker to see the subscriber gone')

    const again = await connectCollecting(b.url, { clientId: 'no-ack', clean: false })
    clients.push(again.client)
    await waitUntil(() => again.received.length === 1, 'redelivery')
    expect(first).toEqual([false])
    expect(again.received.map((m) => m.packet.dup)).toEqual([true])
  })

  it('bounds an offline queue: at maxQueuedPerClient the oldest messages are dropped and counted (docs/durability.md, "Queue limit")', async () => {
    b = await startBroker({ maxQueuedPerClient: 10 })
    const topic = uniqueTopic('bound')
    const overflows: string[] = []
    b.broker.on('queue-overflow', (clientId) => overflows.push(clientId))
    const sub = await connect('bounded', false)
    await sub.subscribeAsync(topic, { qos: 1 })
    await sub.endAsync()
    const pub = await connect('pub', true)
    for (let i = 0; i < 15; i++) await pub.publishAsync(topic, String(i), { qos: 1 })
    expect(b.broker.stats().queuedMessages['bounded']).toBe(10)
    expect(b.broker.stats().droppedMessages).toBe(5)
    expect(overflows).toEqual(Array(5).fill('bounded'))

    const back = await connectCollecting(b.url, { clientId: 'bounded', clean: false })
    clients.push(back.client)
    const got = (): number[] => back.received.map((m) => Number(m.payload))
    await waitUntil(() => got().length >= 10, 'the 10 queued messages')
    await expectNothingFor(300, () => got().length > 10, 'more than 10 messages')
    expect(got()).toEqual([5, 6, 7, 8, 9, 10, 11, 12, 13, 14])
  })
})
