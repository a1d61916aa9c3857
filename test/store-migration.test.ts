// Upgrading a data directory written by the previous key layout (every owner
// under a short prefix at the root of the LevelDB): the broker moves it into
// sublevels on start (docs/keyspace.md) and nothing is lost.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Level } from 'level'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { encodePacket, encodeQueuedPacket, encodeValue } from '../broker/persistence/packet-codec.js'
import { connectCollecting } from './helpers/connect.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { waitUntil } from './helpers/wait.js'

const pad = (n: number): string => n.toString().padStart(16, '0')
const enc = encodeURIComponent

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

describe('upgrade from the previous key layout', () => {
  it('finds retained messages, sessions with their queues, group queues, delayed messages and schedules', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'fleetq-upgrade-'))
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }))
    const now = Date.now()

    // What the previous version left in its data directory, with the same value encodings.
    const old = new Level<string, Buffer>(dataDir, { keyEncoding: 'utf8', valueEncoding: 'buffer' })
    await old.batch([
      { type: 'put', key: 'r:fleet/site1/status', value: encodePacket({ cmd: 'publish', topic: 'fleet/site1/status', payload: Buffer.from('online'), qos: 1, retain: true, dup: false, brokerId: 'old-broker', brokerCounter: 2 }) },
      { type: 'put', key: `s:${enc('dev-1')}:cmd/dev-1/#`, value: encodeValue({ qos: 1, rh: 0, rap: false, nl: false }) },
      { type: 'put', key: `o:${enc('dev-1')}:${pad(1)}`, value: encodeQueuedPacket({ cmd: 'publish', topic: 'cmd/dev-1/led', payload: Buffer.from('led on'), qos: 1, retain: false, dup: false, brokerId: 'old-broker', brokerCounter: 1 }) },
      { type: 'put', key: `gd:${enc('jobs/work/#')}`, value: encodeValue({ key: 'jobs/work/#', group: 'jobs', filter: 'work/#', createdAt: now - 60_000 }) },
      { type: 'put', key: `gm:${enc('jobs/work/#')}:${pad(7)}`, value: encodeValue({ topic: 'work/1', payload: Buffer.from('job-1'), qos: 1, enqueuedAt: now - 1000, deliveries: 0 }) },
      // Fell due while the broker was down: published on start, into dev-1's session.
      { type: 'put', key: `dq:${pad(now - 500)}:${pad(now - 60_000)}:${pad(1)}`, value: encodePacket({ cmd: 'publish', topic: 'cmd/dev-1/reboot', payload: Buffer.from('reboot'), qos: 1, retain: false, dup: false }) },
      {
        type: 'put',
        key: 'sc:nightly',
        value: encodeValue({
          schedule: { name: 'nightly', cron: '0 3 * * *', timezone: 'UTC', topic: 'ops/nightly', qos: 1, retain: false, catchUp: 'none' },
          source: 'api', createdAt: now - 60_000, updatedAt: now - 60_000, doneUntil: now - 60_000, lastRunAt: null
        })
      }
    ])
    await old.close()

    const lines: Array<Record<string, unknown>> = []
    const logger = pino({ level: 'info' }, new Writable({ write (chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } }))
    const broker: TestBroker = await startBroker({ dataDir, logger })
    cleanups.push(() => broker.close())
    const moved = lines.find((l) => String(l['msg']).startsWith('moved data from the previous key layout'))
    expect(moved).toMatchObject({ total: 7 })

    // The retained message.
    const viewer = await connectCollecting(broker.url, { clientId: 'viewer' })
    cleanups.push(() => viewer.client.endAsync(true))
    await viewer.client.subscribeAsync('fleet/#', { qos: 1 })
    await waitUntil(() => viewer.received.length === 1, 'the retained message')
    expect(viewer.received[0]).toMatchObject({ topic: 'fleet/site1/status', payload: 'online' })
    expect(viewer.received[0]?.packet.retain).toBe(true)

    // The persistent session: its subscription, the message queued for it, then the delayed one.
    const device = await connectCollecting(broker.url, { clientId: 'dev-1', clean: false })
    cleanups.push(() => device.client.endAsync(true))
    await waitUntil(() => device.received.length === 2, () => `dev-1's queue (got ${JSON.stringify(device.received.map((m) => m.payload))})`)
    expect(device.received.map((m) => [m.topic, m.payload])).toEqual([['cmd/dev-1/led', 'led on'], ['cmd/dev-1/reboot', 'reboot']])

    // The group queue, waiting for its first member.
    const worker = await connectCollecting(broker.url, { clientId: 'worker' })
    cleanups.push(() => worker.client.endAsync(true))
    await worker.client.subscribeAsync('$share/jobs/work/#', { qos: 1 })
    await waitUntil(() => worker.received.length === 1, 'the queued group message')
    expect(worker.received[0]).toMatchObject({ topic: 'work/1', payload: 'job-1' })

    // The schedule.
    expect(broker.broker.schedules.list().map((s) => [s.name, s.source, s.topic])).toEqual([['nightly', 'api', 'ops/nightly']])

    // Once moved, it stays moved: a restart finds everything in its place and moves nothing.
    lines.length = 0
    await broker.restart()
    expect(lines.filter((l) => String(l['msg']).startsWith('moved data'))).toEqual([])
    expect(broker.broker.schedules.list().map((s) => s.name)).toEqual(['nightly'])
  })
})
