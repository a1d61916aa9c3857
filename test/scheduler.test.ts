import { afterEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { createBroker, ErrorCodes, ManualClock, ScheduleError, type ScheduleInput } from '../broker/index.js'
import { connect, type Client } from '../client/index.js'
import { connectCollecting, type Received } from './helpers/connect.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

const thumb = { imageUrl: 'https://example.com/a.png', width: 10, height: 10 }
const HOUR = 3_600_000

describe('periodic schedules (injectable clock: no real minutes are waited)', () => {
  let b: TestBroker | undefined
  const clients: MqttClient[] = []
  const fleetq: Client[] = []
  afterEach(async () => {
    await Promise.all(fleetq.splice(0).map((c) => c.close()))
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    await b?.close()
    b = undefined
  })

  async function listen (filter: string): Promise<Received[]> {
    const { client, received } = await connectCollecting(b!.url, { clean: true })
    clients.push(client)
    await client.subscribeAsync(filter, { qos: 1 })
    return received
  }

  /** Moves the clock one step and waits until `received` has `count` messages. */
  async function tick (clock: ManualClock, to: string, received: Received[], count: number): Promise<void> {
    clock.set(new Date(to))
    await waitUntil(() => received.length >= count, () => `${count} messages after ${to}`, 10_000, () => `got ${received.length}`)
  }

  it('fires each tick once, with its payload, QoS and retain, and shows next and last run', async () => {
    const clock = new ManualClock(new Date('2026-01-01T00:00:05Z'))
    const topic = uniqueTopic('cron')
    b = await startBroker({ clock })
    const info = await b.broker.schedules.upsert({ name: 'every-10s', cron: '*/10 * * * * *', topic, payload: { hello: 1 }, qos: 1, retain: true })
    expect(info).toMatchObject({ name: 'every-10s', timezone: 'UTC', catchUp: 'last', source: 'api', nextRunAt: '2026-01-01T00:00:10.000Z', lastRunAt: null })
    const received = await listen(topic)
    await tick(clock, '2026-01-01T00:00:09.999Z', received, 0)
    await expectNothingFor(200, () => received.length > 0, 'a message before the tick')
    await tick(clock, '2026-01-01T00:00:10Z', received, 1)
    await tick(clock, '2026-01-01T00:00:20Z', received, 2)
    await expectNothingFor(300, () => received.length > 2, 'a tick fired twice')
    expect(received.map((r) => [r.topic, r.payload, r.packet.qos])).toEqual([[topic, '{"hello":1}', 1], [topic, '{"hello":1}', 1]])
    expect(b.broker.schedules.get('every-10s')).toMatchObject({ lastRunAt: '2026-01-01T00:00:20.000Z', nextRunAt: '2026-01-01T00:00:30.000Z' })
    // retained at the target: a late subscriber gets it
    const late = await listen(topic)
    await waitUntil(() => late.length === 1, 'the retained tick')
    expect(late[0]!.packet.retain).toBe(true)
    expect(b.broker.stats().scheduler).toMatchObject({ schedules: 1, fired: 2 })
  })

  it('fires a tick once across a restart: the last fired time is stored', async () => {
    const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'))
    const topic = uniqueTopic('restart')
    b = await startBroker({ clock })
    await b.broker.schedules.upsert({ name: 'minutely', cron: '* * * * *', topic, payload: 'x' })
    const persistent = await connectCollecting(b.url, { clientId: `${topic}-sub`, clean: false })
    clients.push(persistent.client)
    await persistent.client.subscribeAsync(topic, { qos: 1 })
    await tick(clock, '2026-01-01T00:01:00Z', persistent.received, 1)
    await persistent.client.endAsync()
    await b.restart() // same clock time: the 00:01 tick is done
    const again = await connectCollecting(b.url, { clientId: `${topic}-sub`, clean: false })
    clients.push(again.client)
    await expectNothingFor(400, () => again.received.length > 0, 'the 00:01 tick fired again after the restart')
    await tick(clock, '2026-01-01T00:02:00Z', again.received, 1)
    await expectNothingFor(300, () => again.received.length > 1, 'a duplicate')
    expect(b.broker.schedules.list().map((s) => s.lastRunAt)).toEqual(['2026-01-01T00:02:00.000Z'])
  })

  it('catch-up after downtime: none skips, last fires the latest, all fires each missed tick in order', async () => {
    const start = new Date('2026-01-01T00:30:00Z').getTime()
    const clock = new ManualClock(start)
    b = await startBroker({ clock })
    const base = { cron: '0 * * * *', task: 'thumbnail', payload: thumb } as const
    for (const catchUp of ['none', 'last', 'all'] as const) await b.broker.schedules.upsert({ ...base, name: `catch-${catchUp}`, catchUp })
    // Tasks wait in the type's durable group while no worker is online.
    await b.broker.close()
    clock.set(start + 3 * HOUR) // down for 01:00, 02:00, 03:00
    await b.restart()
    const { client, received } = await connectCollecting(b.url, { clean: true })
    clients.push(client)
    await client.subscribeAsync('$share/thumbnail/tasks/thumbnail', { qos: 1 })
    await waitUntil(() => received.length >= 4, '1 (last) + 3 (all) tasks', 10_000, () => `got ${received.length}`)
    await expectNothingFor(400, () => received.length > 4, 'a task from catchUp none, or a duplicate')
    const byProducer = (name: string): string[] => received
      .map((r) => JSON.parse(r.payload) as { producer: string, createdAt: string })
      .filter((e) => e.producer === `schedule:${name}`)
      .map((e) => e.createdAt)
    expect(byProducer('catch-none')).toEqual([])
    expect(byProducer('catch-last')).toEqual(['2026-01-01T03:00:00.000Z'])
    expect(byProducer('catch-all')).toEqual(['2026-01-01T01:00:00.000Z', '2026-01-01T02:00:00.000Z', '2026-01-01T03:00:00.000Z'])
    expect(b.broker.stats().scheduler.skipped).toBe(3 + 2)
    // every mode runs on time again afterwards
    expect(b.broker.schedules.list().map((s) => s.nextRunAt)).toEqual(Array(3).fill('2026-01-01T04:00:00.000Z'))
  })

  it('daily jobs in New York run once on the day their time does not exist and once on the day it happens twice', async () => {
    const clock = new ManualClock(new Date('2026-03-07T12:00:00Z'))
    const topic = uniqueTopic('dst')
    b = await startBroker({ clock })
    const received = await listen(topic)
    const firedAt: string[] = []
    /** Walks the clock an hour at a time, waiting after each step until what fell due has arrived. */
    async function walk (from: string, to: string): Promise<void> {
      const earlier = b!.broker.stats().delayed.fired - received.length
      for (let t = Date.parse(from) + HOUR; t <= Date.parse(to); t += HOUR) {
        const timers = clock.pendingTimers
        clock.set(t)
        // The schedule re-arms its timer after a tick; the tick's message then goes out.
        await waitUntil(() => clock.pendingTimers === timers && b!.broker.stats().delayed.pending === 0 &&
          earlier + received.length === b!.broker.stats().delayed.fired, () => `the step to ${new Date(t).toISOString()} to settle`)
        while (firedAt.length < received.length) firedAt.push(new Date(t).toISOString())
      }
    }
    // Spring forward, 2026-03-08: 02:00 EST jumps to 03:00 EDT; the run comes when the gap ends.
    await b.broker.schedules.upsert({ name: 'spring', cron: '30 2 * * *', timezone: 'America/New_York', topic })
    await walk('2026-03-07T12:00:00Z', '2026-03-09T12:00:00Z')
    expect(firedAt).toEqual(['2026-03-08T07:00:00.000Z', '2026-03-09T07:00:00.000Z']) // stepped hourly: 06:30Z is seen at 07:00Z
    expect(b.broker.schedules.get('spring').lastRunAt).toBe('2026-03-09T06:30:00.000Z')
    await b.broker.schedules.remove('spring')
    // Fall back, 2026-11-01: 01:00-02:00 happens twice; 01:30 runs at its first occurrence only.
    clock.set(new Date('2026-10-31T12:00:00Z'))
    await b.broker.schedules.upsert({ name: 'fall', cron: '30 1 * * *', timezone: 'America/New_York', topic })
    firedAt.length = 0
    received.length = 0
    const firedBefore = b.broker.stats().delayed.fired
    await walk('2026-10-31T12:00:00Z', '2026-11-02T12:00:00Z')
    expect(b.broker.stats().delayed.fired - firedBefore).toBe(2)
    expect(b.broker.schedules.get('fall').lastRunAt).toBe('2026-11-02T06:30:00.000Z')
    expect(firedAt).toEqual(['2026-11-01T06:00:00.000Z', '2026-11-02T07:00:00.000Z']) // 05:30Z (01:30 EDT) seen at the 06:00Z step
  })

  it('config schedules are applied on start and removed when they leave the config; API schedules stay', async () => {
    const clock = new ManualClock(new Date('2026-06-01T10:00:00Z'))
    const schedule: ScheduleInput = { name: 'report', cron: '0 9 * * 1-5', timezone: 'Europe/Berlin', task: 'thumbnail', payload: thumb, catchUp: 'none' }
    b = await startBroker({ clock, schedules: [schedule] })
    await b.broker.schedules.upsert({ name: 'api-made', cron: '@daily', topic: 'x/y' })
    expect(b.broker.schedules.list()).toMatchObject([
      { name: 'api-made', source: 'api', nextRunAt: '2026-06-02T00:00:00.000Z' },
      { name: 'report', source: 'config', nextRunAt: '2026-06-02T07:00:00.000Z' } // 09:00 CEST
    ])
    await b.broker.close()
    const again = await createBroker({ port: 0, logLevel: 'silent', dataDir: b.dataDir, clock, schedules: [] })
    try {
      expect(again.schedules.list().map((s) => s.name)).toEqual(['api-made'])
    } finally {
      await again.close()
    }
  })

  it('a task schedule submits on the gate\'s configured topic prefix, into the default group there', async () => {
    const clock = new ManualClock(new Date('2026-01-01T00:00:00Z'))
    b = await startBroker({ clock, tasks: { topicPrefix: 'jobs/' } })
    const received = await listen('$share/thumbnail/jobs/thumbnail')
    await b.broker.schedules.upsert({ name: 'thumbs', cron: '0 * * * *', task: 'thumbnail', payload: thumb })
    await tick(clock, '2026-01-01T01:00:00Z', received, 1)
    expect(received.map((m) => m.topic)).toEqual(['jobs/thumbnail'])
    expect(JSON.parse(received[0]!.payload.toString())).toMatchObject({ type: 'thumbnail', payload: thumb, producer: 'schedule:thumbs' })
  })

  it('a bad config schedule stops the broker with a clear error', async () => {
    await expect(createBroker({ port: 0, logLevel: 'silent', persistence: 'memory', schedules: [{ name: 'bad', cron: '0 25 * * *', topic: 'a' }] }))
      .rejects.toMatchObject({ code: ErrorCodes.CRON_INVALID, schedule: 'bad', message: expect.stringContaining('"0 25 * * *"') })
    await expect(createBroker({ port: 0, logLevel: 'silent', persistence: 'memory', schedules: [{ name: 'tz', cron: '@daily', timezone: 'Mars/Olympus', topic: 'a' }] }))
      .rejects.toMatchObject({ code: ErrorCodes.TIMEZONE_INVALID, message: expect.stringContaining('Mars/Olympus') })
  })

  it('client.schedules: upsert, list, get and remove over MQTT; refusals carry the broker\'s code and nothing is stored', async () => {
    const clock = new ManualClock(new Date('2026-01-01T12:00:00Z'))
    b = await startBroker({ clock })
    const client = await connect(b.url, { clientId: uniqueTopic('sched-client'), reconnectPeriod: 0 })
    fleetq.push(client)
    const created = await client.schedules.upsert({ name: 'nightly-thumbs', cron: '0 3 * * *', timezone: 'Asia/Kolkata', task: 'thumbnail', payload: thumb })
    expect(created).toMatchObject({ name: 'nightly-thumbs', source: 'api', task: 'thumbnail', nextRunAt: '2026-01-01T21:30:00.000Z' }) // 03:00 IST
    await expect(client.schedules.upsert({ name: 'x', cron: 'every day', topic: 'a' })).rejects.toMatchObject({ code: 'FLEETQ_CRON_INVALID' })
    await expect(client.schedules.upsert({ name: 'x', cron: '@daily', timezone: 'Europe/Atlantis', topic: 'a' })).rejects.toMatchObject({ code: 'FLEETQ_TIMEZONE_INVALID' })
    const refused = await client.schedules.upsert({ name: 'x', cron: '@daily', task: 'thumbnail', payload: { width: -1 } }).catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(ScheduleError)
    expect(refused).toMatchObject({ code: 'FLEETQ_SCHEDULE_INVALID' })
    expect((refused as ScheduleError).issues.map((i) => i.path)).toEqual(expect.arrayContaining(['/width', '/imageUrl']))
    await expect(client.schedules.upsert({ name: 'x', cron: '@daily', topic: 'a', task: 'thumbnail' })).rejects.toThrow(/exactly one of "topic" and "task"/)
    await expect(client.schedules.upsert({ name: 'x', cron: '@daily', topic: 'a/#' })).rejects.toThrow(/without wildcards/)
    await expect(client.schedules.upsert({ name: 'x', cron: '@daily', topic: 'a', catchUp: 'some' as 'all' })).rejects.toThrow(/catchUp/)
    await expect(client.schedules.upsert({ name: 'bad name!', cron: '@daily', topic: 'a' })).rejects.toThrow(/name/)
    expect((await client.schedules.list()).map((s) => s.name)).toEqual(['nightly-thumbs'])
    expect(await client.schedules.get('nightly-thumbs')).toMatchObject({ cron: '0 3 * * *', timezone: 'Asia/Kolkata' })
    await client.schedules.remove('nightly-thumbs')
    await expect(client.schedules.remove('nightly-thumbs')).rejects.toMatchObject({ code: 'FLEETQ_SCHEDULE_NOT_FOUND' })
    expect(await client.schedules.list()).toEqual([])
  })
})
