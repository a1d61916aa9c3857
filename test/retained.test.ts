import { afterEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { Clients, expectNothingFor, summary, waitForMessages, type Message } from './helpers/mqtt-helpers.js'

const flags = (m: Message): string => `${m.topic}=${m.payload} q${m.qos}${m.retain ? ' retained' : ''}`

describe('retained messages', () => {
  let b: TestBroker | undefined
  const clients = new Clients()
  afterEach(async () => {
    await clients.closeAll()
    await b?.close()
  })

  async function publisher (): Promise<MqttClient> {
    return (await clients.connect(b!.url, { clientId: `pub-${uniqueTopic()}` })).client
  }

  it('sends the retained message to a new subscriber, with the retain flag', async () => {
    b = await startBroker()
    const t = `${uniqueTopic('ret')}/state`
    const pub = await publisher()
    await pub.publishAsync(t, 'on', { qos: 1, retain: true })

    const sub = await clients.connect(b.url, { clientId: 'ret-sub' })
    await sub.client.subscribeAsync(t, { qos: 1 })
    await waitForMessages(sub.messages, 1, 'retained message')
    // window to catch a second copy
    await expectNothingFor(300, () => sub.messages.length > 1, () => summary(sub.messages).join(', '))
    expect(sub.messages.map(flags)).toEqual([`${t}=on q1 retained`])
  })

  it('keeps only the last retained message of a topic', async () => {
    b = await startBroker()
    const t = `${uniqueTopic('replace')}/state`
    const pub = await publisher()
    for (const v of ['v1', 'v2', 'v3']) await pub.publishAsync(t, v, { qos: 1, retain: true })

    const sub = await clients.connect(b.url, { clientId: 'replace-sub' })
    await sub.client.subscribeAsync(t, { qos: 1 })
    await waitForMessages(sub.messages, 1, 'retained message')
    // window to catch an older retained message sent as well
    await expectNothingFor(400, () => sub.messages.length > 1, () => summary(sub.messages).join(', '))
    expect(sub.messages.map(flags)).toEqual([`${t}=v3 q1 retained`])
  })

  it('clears the retained message with an empty payload, which existing subscribers still receive [MQTT-3.3.1-10]', async () => {
    b = await startBroker()
    const p = uniqueTopic('clear')
    const t = `${p}/state`
    const pub = await publisher()
    await pub.publishAsync(t, 'on', { qos: 1, retain: true })
    const existing = await clients.connect(b.url, { clientId: 'clear-existing' })
    await existing.client.subscribeAsync(t, { qos: 1 })
    await waitForMessages(existing.messages, 1, 'retained message')

    await pub.publishAsync(t, '', { qos: 1, retain: true })
    await waitForMessages(existing.messages, 2, 'the clearing message')
    expect(existing.messages.map(flags)).toEqual([`${t}=on q1 retained`, `${t}= q1`])

    // new subscribers, exact and wildcard, get nothing retained...
    const late = await clients.connect(b.url, { clientId: 'clear-late' })
    await late.client.subscribeAsync(t, { qos: 1 })
    await late.client.subscribeAsync(`${p}/#`, { qos: 1 })
    // window for a retained message that should not exist; it would follow the SUBACK
    await expectNothingFor(400, () => late.messages.length > 0, () => summary(late.messages).join(', '))
    // ...but are subscribed: a live message arrives, once, not retained
    await pub.publishAsync(t, 'live', { qos: 1 })
    await waitForMessages(late.messages, 1, 'live message')
    await expectNothingFor(300, () => late.messages.length > 1, () => summary(late.messages).join(', '))
    expect(late.messages.map(flags)).toEqual([`${t}=live q1`])
  })

  it('sends every matching retained message to a wildcard subscription, and no other', async () => {
    b = await startBroker()
    const p = uniqueTopic('wild')
    const pub = await publisher()
    for (const t of ['a/1', 'a/2', 'a/2/x', 'b/1']) await pub.publishAsync(`${p}/${t}`, t, { qos: 1, retain: true })

    const plus = await clients.connect(b.url, { clientId: 'wild-plus' })
    await plus.client.subscribeAsync(`${p}/a/+`, { qos: 1 })
    const hash = await clients.connect(b.url, { clientId: 'wild-hash' })
    await hash.client.subscribeAsync(`${p}/#`, { qos: 1 })
    await waitForMessages(plus.messages, 2, 'retained messages for a/+')
    await waitForMessages(hash.messages, 4, 'retained messages for #')
    // window to catch a retained message the filter does not match
    await expectNothingFor(400, () => plus.messages.length > 2 || hash.messages.length > 4,
      () => `${summary(plus.messages).join(', ')} | ${summary(hash.messages).join(', ')}`)
    expect(plus.messages.map(flags).sort()).toEqual([`${p}/a/1=a/1 q1 retained`, `${p}/a/2=a/2 q1 retained`])
    expect(hash.messages.map(flags).sort()).toEqual(
      ['a/1', 'a/2', 'a/2/x', 'b/1'].map((t) => `${p}/${t}=${t} q1 retained`).sort())
  })

  it('sets the retain flag only on the copy sent on subscribe, not on live forwarding [MQTT-3.3.1-8, MQTT-3.3.1-9]', async () => {
    b = await startBroker()
    const p = uniqueTopic('flag')
    const t = `${p}/state`
    const before = await clients.connect(b.url, { clientId: 'flag-before' })
    await before.client.subscribeAsync(`${p}/#`, { qos: 1 })
    const pub = await publisher()
    await pub.publishAsync(t, 'on', { qos: 1, retain: true })
    await waitForMessages(before.messages, 1, 'live message')

    const after = await clients.connect(b.url, { clientId: 'flag-after' })
    await after.client.subscribeAsync(`${p}/#`, { qos: 1 })
    await waitForMessages(after.messages, 1, 'retained message')
    // a live message to both after that: never retained
    await pub.publishAsync(t, 'off', { qos: 1, retain: true })
    await waitForMessages(before.messages, 2, 'second live message')
    await waitForMessages(after.messages, 2, 'live message')

    expect(before.messages.map(flags)).toEqual([`${t}=on q1`, `${t}=off q1`])
    expect(after.messages.map(flags)).toEqual([`${t}=on q1 retained`, `${t}=off q1`])
  })

  it('downgrades a retained QoS 1 message to the QoS 0 of the subscription, exact or wildcard', async () => {
    b = await startBroker()
    const p = uniqueTopic('downgrade')
    const t = `${p}/state`
    const pub = await publisher()
    await pub.publishAsync(t, 'q1', { qos: 1, retain: true })

    const cases = [
      { id: 'exact-0', filter: t, qos: 0 as const, expected: 0 },
      { id: 'plus-0', filter: `${p}/+`, qos: 0 as const, expected: 0 },
      { id: 'hash-0', filter: `${p}/#`, qos: 0 as const, expected: 0 },
      { id: 'exact-1', filter: t, qos: 1 as const, expected: 1 },
      { id: 'hash-1', filter: `${p}/#`, qos: 1 as const, expected: 1 }
    ]
    const got: Array<{ id: string, qos: number, retain: boolean, payload: string }> = []
    for (const c of cases) {
      const sub = await clients.connect(b.url, { clientId: `downgrade-${c.id}` })
      await sub.client.subscribeAsync(c.filter, { qos: c.qos })
      const [m] = await waitForMessages(sub.messages, 1, `retained message for ${c.id}`)
      got.push({ id: c.id, qos: m!.qos, retain: m!.retain, payload: m!.payload })
    }
    expect(got).toEqual(cases.map((c) => ({ id: c.id, qos: c.expected, retain: true, payload: 'q1' })))
  })

  it('keeps retained QoS 1 messages, replaced and cleared ones included, across a restart', async () => {
    b = await startBroker()
    const p = uniqueTopic('restart')
    const pub = await publisher()
    await pub.publishAsync(`${p}/a`, 'a1', { qos: 1, retain: true })
    await pub.publishAsync(`${p}/b`, 'b1', { qos: 1, retain: true })
    await pub.publishAsync(`${p}/c`, 'c1', { qos: 1, retain: true })
    await pub.publishAsync(`${p}/a`, 'a2', { qos: 1, retain: true })
    await pub.publishAsync(`${p}/b`, '', { qos: 1, retain: true })
    await pub.endAsync()

    await b.restart()

    const sub = await clients.connect(b.url, { clientId: 'restart-sub' })
    await sub.client.subscribeAsync(`${p}/#`, { qos: 1 })
    await waitForMessages(sub.messages, 2, 'retained messages')
    // window to catch the cleared or replaced message coming back
    await expectNothingFor(400, () => sub.messages.length > 2, () => summary(sub.messages).join(', '))
    expect(sub.messages.map(flags).sort()).toEqual([`${p}/a=a2 q1 retained`, `${p}/c=c1 q1 retained`])
  })
})
