import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startBrokerProcess } from './helpers/broker-process.js'
import { connectCollecting } from './helpers/connect.js'
import { waitUntil } from './helpers/wait.js'

// The child-process broker every kill -9 test stands on: if it restarted on
// another directory, or dropped the options, those tests would prove nothing.
describe('test harness: startBrokerProcess()', () => {
  const clients: MqttClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
  })

  it('passes broker options to the child and keeps data, port and options across kill and restart', async () => {
    const broker = await startBrokerProcess({ options: { delayed: { maxDelaySeconds: 5 } } })
    const port = broker.port
    const first = await connectCollecting(broker.url, { clientId: 'harness-sub', clean: false })
    clients.push(first.client)
    await first.client.subscribeAsync(['harness/#', '$fleetq/dead/$delayed'], { qos: 1 })
    await first.client.publishAsync('harness/retained', 'kept', { qos: 1, retain: true })
    await first.client.publishAsync('$delayed/6/harness/x', 'too long', { qos: 1 })
    await waitUntil(() => first.received.some((m) => m.topic === '$fleetq/dead/$delayed'), 'the refusal of a 6 s delay (maxDelaySeconds 5)')
    await broker.kill()
    expect(broker.running).toBe(false)

    await broker.restart()
    expect(broker.port).toBe(port)
    const again = await connectCollecting(broker.url, { clientId: 'harness-sub', clean: false })
    clients.push(again.client)
    expect(again.client.connected).toBe(true)
    // the options still apply to the new process
    await again.client.publishAsync('$delayed/5.5/harness/y', 'still too long', { qos: 1 })
    const refusedY = (): boolean => again.received.some((m) => m.topic === '$fleetq/dead/$delayed' && (JSON.parse(m.payload) as { topic: string }).topic === '$delayed/5.5/harness/y')
    await waitUntil(refusedY, 'the refusal after the restart')
    // and the data directory is the same one
    const late = await connectCollecting(broker.url, { clientId: 'harness-late' })
    clients.push(late.client)
    await late.client.subscribeAsync('harness/retained', { qos: 1 })
    await waitUntil(() => late.received.length === 1, 'the retained message from before the kill')

    await broker.close()
    expect(broker.running).toBe(false)
    const dir = broker.dataDir
    await broker.dispose()
    expect(existsSync(dir), 'the temporary data directory is removed').toBe(false)
  })

  it('restarts on the same port once another process lets go of it', async () => {
    const broker = await startBrokerProcess()
    const port = broker.port
    await broker.close()
    // Something else holds the port for a moment, as a parallel test's socket can.
    const holder = createServer()
    await new Promise<void>((resolve) => holder.listen(port, '127.0.0.1', resolve))
    const restarting = broker.restart()
    await waitUntil(() => broker.busyPortRetries > 0, 'a start refused because the port is taken')
    await new Promise<void>((resolve) => holder.close(() => resolve()))
    await restarting
    expect(broker.port).toBe(port)
    const c = await connectCollecting(broker.url, {})
    clients.push(c.client)
    expect(c.client.connected).toBe(true)
  })

  it('leaves a data directory it did not make', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'fleetq-harness-'))
    try {
      const broker = await startBrokerProcess({ dataDir })
      expect(broker.dataDir).toBe(dataDir)
      await broker.dispose()
      expect(broker.running).toBe(false)
      expect(existsSync(dataDir)).toBe(true)
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
