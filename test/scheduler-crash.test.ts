import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { connect } from '../client/index.js'
import { startBrokerProcess } from './helpers/broker-process.js'
import { connectCollecting, type Received } from './helpers/connect.js'
import { waitUntil } from './helpers/wait.js'

const thumb = { imageUrl: 'https://example.com/a.png', width: 10, height: 10 }

describe('schedules across kill -9 of the broker', () => {
  // The broker processes and their data directories go when each test ends.
  const clients: MqttClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
  })

  it('each tick makes exactly one task: none lost, none made twice, with catchUp all over the downtime', async () => {
    const broker = await startBrokerProcess()
    const received: Received[] = []
    const sub = await connectCollecting(broker.url, { clientId: 'tick-watcher', clean: false }, received)
    clients.push(sub.client)
    await sub.client.subscribeAsync('tasks/thumbnail', { qos: 1 })
    const admin = await connect(broker.url, { clientId: 'tick-admin', reconnectPeriod: 0 })
    await admin.schedules.upsert({ name: 'every-second', cron: '* * * * * *', task: 'thumbnail', payload: thumb, catchUp: 'all' })
    await admin.close()
    await waitUntil(() => received.length >= 3, 'three ticks before the kill')
    await broker.kill()
    await sub.client.endAsync(true)
    clients.splice(0)

    // Down for a while: those ticks are caught up on start (catchUp 'all').
    const downSince = Date.now()
    await waitUntil(() => Date.now() - downSince >= 1500, 'a second and a half of downtime')
    await broker.restart()
    const again = await connectCollecting(broker.url, { clientId: 'tick-watcher', clean: false }, received)
    clients.push(again.client)
    const ticksSeen = (): Set<string> => new Set(received.map((r) => (JSON.parse(r.payload) as { createdAt: string }).createdAt))
    const afterRestart = Date.now()
    await waitUntil(() => [...ticksSeen()].some((t) => Date.parse(t) >= afterRestart + 1000), 'ticks after the restart')
    await broker.close()

    const envelopes = received.map((r) => JSON.parse(r.payload) as { id: string, createdAt: string })
    const idsByTick = new Map<string, Set<string>>()
    for (const e of envelopes) idsByTick.set(e.createdAt, (idsByTick.get(e.createdAt) ?? new Set()).add(e.id))
    // A tick is one task: a redelivered copy carries the same id (at least once), never a second task.
    for (const [tick, ids] of idsByTick) expect(ids.size, `tick ${tick}`).toBe(1)
    // No tick lost, the downtime's included: consecutive seconds from the first to the last.
    const ticks = [...idsByTick.keys()].map((t) => Date.parse(t)).sort((a, b) => a - b)
    for (let i = 1; i < ticks.length; i++) expect(ticks[i]! - ticks[i - 1]!, `gap after ${new Date(ticks[i - 1]!).toISOString()}`).toBe(1000)
    expect(ticks.length).toBeGreaterThanOrEqual(6)
  })
})
