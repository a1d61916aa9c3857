import { afterEach, describe, expect, it } from 'vitest'
import { Clients, waitUntil } from './helpers/mqtt-helpers.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'

/*
 * The $SYS/broker/ topics that map onto Mosquitto's (mosquitto(8), BROKER
 * STATUS; docs/operations.md#sys-topics), read by a real subscriber to `$SYS/#`.
 */

const brokers: TestBroker[] = []
const clients = new Clients()

afterEach(async () => {
  await clients.closeAll()
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})

describe('$SYS/broker/ topics beyond the first ones', () => {
  it('clients total and maximum, subscriptions, retained messages, heap, and load averages that move', async () => {
    const b = await startBroker({ sysIntervalSeconds: 1 })
    brokers.push(b)
    const sys = await clients.connect(b.url)
    await sys.client.subscribeAsync('$SYS/#', { qos: 0 })
    const latest = (topic: string): string | undefined => sys.messages.filter((m) => m.topic === `$SYS/broker/${topic}`).at(-1)?.payload
    const number = (topic: string): number => Number(latest(topic))

    const pub = await clients.connect(b.url)
    // A persistent session that goes away still counts in clients/total; while here, it made the maximum 3.
    const away = await clients.connect(b.url, { clientId: 'sys-away', clean: false })
    await away.client.subscribeAsync('kept/+', { qos: 1 })
    await away.client.endAsync()
    await pub.client.subscribeAsync('load/#', { qos: 1 })
    await pub.client.publishAsync('kept/a', 'retained', { qos: 1, retain: true })
    for (let i = 0; i < 50; i++) await pub.client.publishAsync('load/x', 'x'.repeat(100), { qos: 1 })

    await waitUntil(() => number('load/messages/received/1min') > 0 && number('load/bytes/sent/1min') > 0 &&
      number('clients/total') === 3 && number('clients/maximum') === 3 && number('clients/connected') === 2,
    'the load averages and client counts to arrive', 20_000, () => JSON.stringify(sys.messages.slice(-40).map((m) => [m.topic, m.payload])))
    expect(number('clients/connected')).toBe(2)
    expect(number('clients/disconnected')).toBe(1)
    // The `$SYS/#` and `load/#` filters of the connected clients.
    expect(number('subscriptions/count')).toBe(2)
    // Mosquitto's name has a space in it. The broker's own $SYS/ values are retained too.
    expect(number('retained messages/count')).toBeGreaterThan(1)
    expect(number('heap/current')).toBeGreaterThan(1_000_000)
    for (const what of ['messages/received', 'messages/sent', 'bytes/received', 'bytes/sent']) {
      for (const window of ['1min', '5min', '15min']) expect(latest(`load/${what}/${window}`)).toMatch(/^\d+\.\d\d$/)
    }
    // A decaying average: the 1-minute one reacts first.
    expect(number('load/messages/received/1min')).toBeGreaterThanOrEqual(number('load/messages/received/15min'))
    // Then it moves down when the traffic stops.
    const peak = number('load/messages/received/1min')
    await waitUntil(() => number('load/messages/received/1min') < peak, 'the 1-minute load to decay', 20_000, () => String(latest('load/messages/received/1min')))
  })

  it('publishes a value again only when it changed, as Mosquitto\'s sys_tree.c does', async () => {
    const b = await startBroker({ sysIntervalSeconds: 1 })
    brokers.push(b)
    const sys = await clients.connect(b.url)
    await sys.client.subscribeAsync('$SYS/broker/#', { qos: 0 })
    const count = (topic: string): number => sys.messages.filter((m) => m.topic === `$SYS/broker/${topic}`).length
    // Uptime moves every round: three of them have gone by.
    await waitUntil(() => count('uptime') >= 3, 'three rounds', 20_000, () => String(count('uptime')))
    // The version never changes: the retained copy delivered on subscribing is the only one.
    expect(count('version')).toBe(1)
  })
})
