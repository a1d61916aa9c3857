import { afterEach, describe, expect, it } from 'vitest'
import type { Client } from 'aedes'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { Clients, expectNothingFor, summary, waitForEvent, waitForMessages, type Message } from './helpers/mqtt-helpers.js'

const flags = (m: Message): string => `${m.topic}=${m.payload} q${m.qos}${m.retain ? ' retained' : ''}`

describe('wills', () => {
  let b: TestBroker | undefined
  const clients = new Clients()
  afterEach(async () => {
    await clients.closeAll()
    await b?.close()
  })

  /** Resolves when the broker has seen `clientId` go (its will, if any, is published by then or never). */
  function brokerSawDisconnect (clientId: string): Promise<void> {
    return new Promise((resolve) => {
      const onDisconnect = (client: Client): void => {
        if (client.id !== clientId) return
        b!.broker.aedes.off('clientDisconnect', onDisconnect)
        resolve()
      }
      b!.broker.aedes.on('clientDisconnect', onDisconnect)
    })
  }

  it('publishes the will when the connection drops without DISCONNECT', async () => {
    b = await startBroker()
    const t = `${uniqueTopic('will')}/status`
    const sub = await clients.connect(b.url, { clientId: 'will-sub' })
    await sub.client.subscribeAsync(t, { qos: 1 })
    const dying = await clients.connect(b.url, {
      clientId: 'will-dying', will: { topic: t, payload: Buffer.from('gone'), qos: 1, retain: false }
    })

    const closed = waitForEvent(dying.client, 'close')
    dying.client.stream.destroy()
    await closed
    await waitForMessages(sub.messages, 1, 'will message')
    // window to catch the will published twice
    await expectNothingFor(300, () => sub.messages.length > 1, () => summary(sub.messages).join(', '))
    expect(sub.messages.map(flags)).toEqual([`${t}=gone q1`])
  })

  it('does not publish the will after a clean DISCONNECT [MQTT-3.14.4-3]', async () => {
    b = await startBroker()
    const t = `${uniqueTopic('nowill')}/status`
    const sub = await clients.connect(b.url, { clientId: 'nowill-sub' })
    await sub.client.subscribeAsync(t, { qos: 1 })
    const leaving = await clients.connect(b.url, {
      clientId: 'nowill-leaving', will: { topic: t, payload: Buffer.from('gone'), qos: 1, retain: false }
    })

    const gone = brokerSawDisconnect('nowill-leaving')
    await leaving.client.endAsync()
    await gone
    // the broker publishes a will before it reports the disconnect; a marker
    // published after that reaches the subscriber after any will would have
    const pub = await clients.connect(b.url, { clientId: 'nowill-pub' })
    await pub.client.publishAsync(t, 'marker', { qos: 1 })
    await waitForMessages(sub.messages, 1, 'marker')
    // short window to catch a will that would still be on its way
    await expectNothingFor(300, () => sub.messages.length > 1, () => summary(sub.messages).join(', '))
    expect(sub.messages.map(flags)).toEqual([`${t}=marker q1`])
  })

  it('retains a will published with the retain flag', async () => {
    b = await startBroker()
    const t = `${uniqueTopic('retwill')}/status`
    const sub = await clients.connect(b.url, { clientId: 'retwill-sub' })
    await sub.client.subscribeAsync(t, { qos: 1 })
    const dying = await clients.connect(b.url, {
      clientId: 'retwill-dying', will: { topic: t, payload: Buffer.from('offline'), qos: 1, retain: true }
    })
    dying.client.stream.destroy()
    await waitForMessages(sub.messages, 1, 'will message')

    const late = await clients.connect(b.url, { clientId: 'retwill-late' })
    await late.client.subscribeAsync(t, { qos: 1 })
    await waitForMessages(late.messages, 1, 'retained will')
    // window to catch a second copy of the retained will
    await expectNothingFor(300, () => late.messages.length > 1 || sub.messages.length > 1,
      () => `${summary(sub.messages).join(', ')} | ${summary(late.messages).join(', ')}`)
    expect(sub.messages.map(flags)).toEqual([`${t}=offline q1`])
    expect(late.messages.map(flags)).toEqual([`${t}=offline q1 retained`])
  })
})

describe('session takeover [MQTT-3.1.4-2]', () => {
  let b: TestBroker | undefined
  const clients = new Clients()
  afterEach(async () => {
    await clients.closeAll()
    await b?.close()
  })

  it('disconnects the first client when a second connects with the same client id; the second works', async () => {
    b = await startBroker()
    const t = `${uniqueTopic('takeover')}/x`
    const first = await clients.connect(b.url, { clientId: 'same-id' })
    await first.client.subscribeAsync(t, { qos: 1 })
    const firstClosed = waitForEvent(first.client, 'close')

    const second = await clients.connect(b.url, { clientId: 'same-id' })
    await firstClosed
    expect(first.client.connected).toBe(false)
    expect(second.connack.sessionPresent).toBe(false)

    // a clean session: the first one's subscription is gone, the second's works
    await second.client.subscribeAsync(`${t}/2`, { qos: 1 })
    const pub = await clients.connect(b.url, { clientId: 'takeover-pub' })
    await pub.client.publishAsync(t, 'to the old subscription', { qos: 1 })
    await pub.client.publishAsync(`${t}/2`, 'to the new one', { qos: 1 })
    await waitForMessages(second.messages, 1, 'message on the new connection')
    // window to catch the message to the old subscription
    await expectNothingFor(300, () => second.messages.length > 1, () => summary(second.messages).join(', '))
    expect(summary(second.messages)).toEqual([`${t}/2=to the new one`])
    expect(first.messages).toEqual([])
    expect(b.broker.aedes.connectedClients).toBe(2)
  })

  it('carries a persistent session over to the new connection (sessionPresent, subscriptions)', async () => {
    b = await startBroker()
    const p = uniqueTopic('takeover-persist')
    const first = await clients.connect(b.url, { clientId: 'persist-id', clean: false })
    expect(first.connack.sessionPresent).toBe(false)
    await first.client.subscribeAsync(`${p}/#`, { qos: 1 })
    const pub = await clients.connect(b.url, { clientId: 'persist-pub' })
    await pub.client.publishAsync(`${p}/a`, 'before', { qos: 1 })
    await waitForMessages(first.messages, 1, 'message before the takeover')
    const firstClosed = waitForEvent(first.client, 'close')

    const second = await clients.connect(b.url, { clientId: 'persist-id', clean: false })
    await firstClosed
    expect(second.connack.sessionPresent).toBe(true)

    // no new SUBSCRIBE: the session's subscription delivers
    await pub.client.publishAsync(`${p}/a`, 'after', { qos: 1 })
    await waitForMessages(second.messages, 1, 'message after the takeover')
    // window to catch a duplicate, or the message acknowledged before the takeover resent
    await expectNothingFor(300, () => second.messages.length > 1, () => summary(second.messages).join(', '))
    expect(second.messages.map(flags)).toEqual([`${p}/a=after q1`])
    expect(first.messages.map(flags)).toEqual([`${p}/a=before q1`])
  })
})
