import { describe, expect, it } from 'vitest'
import { startBrokerProcess } from './helpers/broker-process.js'
import { crashTestClients } from './helpers/crash-clients.js'
import { publishUntilAcked } from './helpers/publish-stream.js'
import { connectCollecting, type Received } from './helpers/connect.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

describe('kill -9 of the broker', () => {
  const { connect, track } = crashTestClients()

  it('delivers every PUBACKed QoS 1 message to persistent subscribers after SIGKILL mid-stream', async () => {
    const broker = await startBrokerProcess()

    // One subscriber away during the crash, one online and acknowledging.
    const away = await connect(broker.url, 'away', false)
    await away.subscribeAsync('crash/#', { qos: 1 })
    await away.endAsync()
    const online = await connect(broker.url, 'online', false)
    const receivedOnline = new Set<number>()
    online.on('message', (_t, payload) => receivedOnline.add(Number(payload.toString())))
    await online.subscribeAsync('crash/#', { qos: 1 })

    // Many publishes in flight at once, so the kill lands between a PUBACK
    // and the queue writes (the window the publish journal closes).
    const pub = await connect(broker.url, 'pub', true)
    pub.on('error', () => undefined)
    const killAfter = 1500
    const stream = await publishUntilAcked(pub, (n) => `crash/${n % 7}`, killAfter)
    const acked = stream.acked
    await broker.kill()
    // Publishes still pending at the kill were never acknowledged: no promise.
    await stream.settled()
    expect(acked.size).toBeGreaterThanOrEqual(killAfter)

    await broker.restart()
    const awayAgain = await connectCollecting(broker.url, { clientId: 'away', clean: false })
    track(awayAgain.client)
    const onlineAgain = await connectCollecting(broker.url, { clientId: 'online', clean: false })
    track(onlineAgain.client)

    const numbers = (got: Received[]): Set<number> => new Set(got.map((m) => Number(m.payload)))
    const receivedAway = (): Set<number> => numbers(awayAgain.received)
    const missing = (got: Set<number>): number[] => [...acked].filter((n) => !got.has(n))
    const onlineAll = (): Set<number> => new Set([...receivedOnline, ...numbers(onlineAgain.received)])
    await waitUntil(() => missing(receivedAway()).length === 0 && missing(onlineAll()).length === 0,
      'every acknowledged message at both subscribers', 30_000)
    expect(missing(receivedAway())).toEqual([])
    expect(missing(onlineAll())).toEqual([])
  })

  it('keeps retained messages and subscriptions through SIGKILL', async () => {
    const broker = await startBrokerProcess()
    const sub = await connect(broker.url, 'sleeper', false)
    await sub.subscribeAsync('state/+/cmd', { qos: 1 })
    await sub.endAsync()
    const pub = await connect(broker.url, 'pub', true)
    await pub.publishAsync('state/dev1', 'online', { qos: 1, retain: true })
    await broker.kill()

    await broker.restart()
    const pub2 = await connect(broker.url, 'pub2', true)
    await pub2.publishAsync('state/dev1/cmd', 'reboot', { qos: 1 })
    const back = await connectCollecting(broker.url, { clientId: 'sleeper', clean: false })
    track(back.client)
    const got = (): string[] => back.received.map((m) => `${m.topic}=${m.payload}`)
    await waitUntil(() => got().length >= 1, 'the command queued for the restored subscription')
    await back.client.subscribeAsync('state/+', { qos: 1 })
    await waitUntil(() => got().length >= 2, 'the retained state')
    await expectNothingFor(300, () => got().length > 2, `a duplicate: ${got().join(', ')}`)
    expect(got()).toEqual(['state/dev1/cmd=reboot', 'state/dev1=online'])
  })
})
