import { afterEach, describe, expect, it } from 'vitest'
import mqtt from 'mqtt'
import { startBroker, type TestBroker } from './helpers/start-broker.js'

describe('smoke', () => {
  let b: TestBroker
  afterEach(async () => { await b?.close() })

  it('delivers a QoS 1 message between two mqtt.js clients', async () => {
    b = await startBroker()
    const sub = await mqtt.connectAsync(b.url, { clientId: 'sub', protocolVersion: 4 })
    const pub = await mqtt.connectAsync(b.url, { clientId: 'pub', protocolVersion: 4 })
    await sub.subscribeAsync('a/+', { qos: 1 })
    const got = new Promise<string>((resolve) => sub.on('message', (topic, payload) => resolve(`${topic}=${payload.toString()}`)))
    await pub.publishAsync('a/b', 'hello', { qos: 1 })
    expect(await got).toBe('a/b=hello')
    await Promise.all([sub.endAsync(), pub.endAsync()])
  })
})
