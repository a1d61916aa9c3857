import { afterEach, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { startBrokerProcess } from './helpers/broker-process.js'
import { publishUntilAcked } from './helpers/publish-stream.js'
import { connectCollecting } from './helpers/connect.js'
import { RawClient } from './helpers/raw-client.js'
import { waitUntil } from './helpers/wait.js'

describe('shared subscription groups through kill -9', () => {
  // The broker processes and their data directories go when each test ends.
  const clients: MqttClient[] = []
  const raws: RawClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    for (const r of raws.splice(0)) r.destroy()
  })

  it('delivers every PUBACKed message at least once after SIGKILL with messages queued and in flight', async () => {
    const broker = await startBrokerProcess()

    // A member that takes its window and never acknowledges: in flight at the kill.
    const holder = await RawClient.connect(broker.port, 'holder')
    raws.push(holder)
    expect(await holder.subscribe('$share/crash/jobs/#', 1)).toBe(1)

    const pub = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'pub' })
    clients.push(pub)
    pub.on('error', () => undefined)
    const stream = await publishUntilAcked(pub, (n) => `jobs/${n % 5}`, 1200)
    const acked = stream.acked
    await broker.kill()
    await stream.settled()
    expect(holder.received.length).toBeGreaterThan(0)

    await broker.restart()
    const worker = await connectCollecting(broker.url, { clientId: 'worker' })
    clients.push(worker.client)
    // a wide window: this test is about what arrives, not about pacing
    await worker.client.publishAsync('$fleetq/share/prefetch', JSON.stringify({ prefetch: 200 }), { qos: 1 })
    await worker.client.subscribeAsync('$share/crash/jobs/#', { qos: 1 })
    const got = (): Set<number> => new Set(worker.received.map((m) => Number(m.payload)))
    const missing = (): number[] => [...acked].filter((n) => !got().has(n))
    await waitUntil(() => missing().length === 0,
      () => `every acknowledged message at the new member (missing ${missing().length} of ${acked.size}, got ${worker.received.length})`, 45_000)
    expect(missing()).toEqual([])
    // the ones the holder had in flight come back marked as redeliveries
    const held = new Set(holder.received.map((m) => Number(m.payload)))
    const redelivered = worker.received.filter((m) => held.has(Number(m.payload)))
    expect(redelivered.length).toBeGreaterThan(0)
    expect(redelivered.every((m) => m.packet.dup)).toBe(true)
  })
})
