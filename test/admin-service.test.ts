import { afterEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { AdminError, ErrorCodes, FleetqError, ManualClock } from '../broker/index.js'
import { connect, createWorker, TaskFailedError, UnrecoverableError, type Client, type TaskContext, type Worker } from '../client/index.js'
import { connectCollecting, type Received } from './helpers/connect.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { testSchemas } from './helpers/task-schemas.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

const THUMBNAILS = 'thumbnail/tasks/thumbnail'
const thumb = (n: number): { imageUrl: string, width: number, height: number } => ({ imageUrl: `https://example.com/${n}.png`, width: n, height: n })

/** Resolves with the error `fn` throws (or rejects with); fails if it does not. */
async function failure (fn: () => unknown): Promise<FleetqError> {
  try {
    await fn()
  } catch (err) {
    expect(err).toBeInstanceOf(FleetqError)
    return err as FleetqError
  }
  throw new Error('expected a failure')
}

describe('broker.admin (the admin API service)', () => {
  let b: TestBroker | undefined
  const raws: MqttClient[] = []
  const clients: Client[] = []
  const workers: Worker[] = []
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close({ timeoutMs: 500 })))
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await Promise.all(raws.splice(0).map((c) => c.endAsync(true)))
    await b?.close()
    b = undefined
  })

  async function raw (options: Parameters<typeof connectCollecting>[1] = {}): Promise<{ client: MqttClient, received: Received[] }> {
    const connected = await connectCollecting(b!.url, { clean: true, ...options })
    raws.push(connected.client)
    return connected
  }

  async function fleetq (): Promise<Client> {
    const c = await connect(b!.url, { schemas: await testSchemas(), reconnectPeriod: 100 })
    clients.push(c)
    return c
  }

  /** A thumbnail Worker recording each payload it is handed (and the context). */
  async function thumbnailWorker (handler: (payload: unknown, ctx: TaskContext) => unknown = () => 'ok'): Promise<{ worker: Worker, seen: Array<{ payload: unknown, attempt: number, producer: string | undefined }> }> {
    const seen: Array<{ payload: unknown, attempt: number, producer: string | undefined }> = []
    const worker = await createWorker(await fleetq(), 'thumbnail', (payload, ctx) => {
      seen.push({ payload, attempt: ctx.attempt, producer: ctx.envelope.producer })
      return handler(payload, ctx)
    })
    workers.push(worker)
    return { worker, seen }
  }

  it('clients: lists and inspects connected clients with their subscriptions, and disconnects one for real', async () => {
    b = await startBroker()
    const id = uniqueTopic('device')
    const { client } = await raw({ clientId: id, clean: false, keepalive: 42 })
    await client.subscribeAsync('sensors/+/temp', { qos: 1 })
    await client.subscribeAsync('$share/g1/jobs/+', { qos: 1 })

    const view = b.broker.admin.client(id)
    const local = client.stream as unknown as { localPort: number }
    expect(view).toMatchObject({ clientId: id, username: null, address: `127.0.0.1:${local.localPort}`, keepaliveSeconds: 42, cleanSession: false })
    expect(Date.parse(view.connectedAt)).toBeLessThanOrEqual(Date.now())
    expect(view.subscriptions).toEqual([
      { clientId: id, topic: 'sensors/+/temp', qos: 1 },
      { clientId: id, topic: '$share/g1/jobs/+', qos: 1 }
    ])
    expect(b.broker.admin.clients().map((c) => c.clientId)).toEqual([id])
    expect(b.broker.admin.subscriptions()).toEqual(view.subscriptions)
    expect((await failure(() => b!.broker.admin.client('nobody'))).code).toBe(ErrorCodes.CLIENT_NOT_FOUND)
    expect((await failure(() => b!.broker.admin.disconnectClient('nobody'))).code).toBe(ErrorCodes.CLIENT_NOT_FOUND)

    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    await b.broker.admin.disconnectClient(id)
    await closed
    await waitUntil(() => b!.broker.admin.clients().length === 0, 'the client gone from the list')
    expect(b.broker.admin.status().connectedClients).toBe(0)
  })

  it('retained: listed in topic order (text or base64), filtered and limited; deleted, a new subscriber then gets nothing', async () => {
    b = await startBroker()
    const t = uniqueTopic('retained')
    const { client } = await raw()
    await client.publishAsync(`${t}/b`, Buffer.from([0xff, 0xfe, 0x00]), { qos: 1, retain: true })
    await client.publishAsync(`${t}/a`, 'hello', { qos: 1, retain: true })
    await client.publishAsync('elsewhere', 'x', { qos: 1, retain: true })

    expect(await b.broker.admin.retained(`${t}/#`, 100)).toEqual([
      { topic: `${t}/a`, qos: 1, bytes: 5, payload: 'hello' },
      { topic: `${t}/b`, qos: 1, bytes: 3, payload: null, payloadBase64: Buffer.from([0xff, 0xfe, 0x00]).toString('base64') }
    ])
    expect((await b.broker.admin.retained('#', 1)).map((r) => r.topic)).toEqual(['elsewhere'])
    expect((await failure(() => b!.broker.admin.retained('a/#/b', 10))).code).toBe(ErrorCodes.REQUEST_INVALID)
    expect((await failure(() => b!.broker.admin.retained('#', 0))).code).toBe(ErrorCodes.REQUEST_INVALID)

    await b.broker.admin.deleteRetained(`${t}/a`)
    const late = await raw()
    await late.client.subscribeAsync(`${t}/#`, { qos: 1 })
    await waitUntil(() => late.received.length === 1, 'the one retained message left')
    await expectNothingFor(200, () => late.received.length > 1, 'the deleted retained message')
    expect(late.received[0]!.topic).toBe(`${t}/b`)
    expect((await failure(() => b!.broker.admin.deleteRetained(`${t}/a`))).code).toBe(ErrorCodes.RETAINED_NOT_FOUND)
    expect((await failure(() => b!.broker.admin.deleteRetained(`${t}/+`))).code).toBe(ErrorCodes.REQUEST_INVALID)
  })

  it('group pause: kept durably across a restart, a worker gets nothing while paused and every task once resumed', async () => {
    b = await startBroker()
    const device = await raw()
    for (let i = 1; i <= 2; i++) await device.client.publishAsync('tasks/thumbnail', JSON.stringify(thumb(i)), { qos: 1 })
    await waitUntil(() => b!.broker.admin.group(THUMBNAILS).depth === 2, 'two tasks waiting')
    const paused = await b.broker.admin.pauseGroup(THUMBNAILS)
    expect(paused).toMatchObject({ key: THUMBNAILS, group: 'thumbnail', filter: 'tasks/thumbnail', paused: true, depth: 2, inflight: 0 })
    expect(paused.oldestAgeMs).toBeGreaterThanOrEqual(0)

    await b.restart()
    expect(b.broker.admin.group(THUMBNAILS)).toMatchObject({ paused: true, depth: 2 })
    const { seen } = await thumbnailWorker()
    await expectNothingFor(400, () => seen.length > 0, 'a task sent by a paused group')
    // Still stored while paused.
    const more = await raw()
    await more.client.publishAsync('tasks/thumbnail', JSON.stringify(thumb(3)), { qos: 1 })
    await waitUntil(() => b!.broker.admin.group(THUMBNAILS).depth === 3, 'the third task stored')

    expect(await b.broker.admin.resumeGroup(THUMBNAILS)).toMatchObject({ paused: false })
    await waitUntil(() => seen.length === 3, 'every task at the worker after resume')
    expect(seen.map((s) => s.payload)).toEqual([thumb(1), thumb(2), thumb(3)])
    await waitUntil(() => b!.broker.admin.group(THUMBNAILS).depth === 0 && b!.broker.admin.group(THUMBNAILS).inflight === 0, 'all acknowledged')
    expect(b.broker.admin.group(THUMBNAILS).oldestAgeMs).toBeNull()
    expect((await failure(() => b!.broker.admin.pauseGroup('nobody/tasks/none'))).code).toBe(ErrorCodes.GROUP_NOT_FOUND)
  })

  it('group purge: drops the waiting messages durably and counts them; delete is refused while members are in', async () => {
    b = await startBroker()
    const device = await raw()
    for (let i = 1; i <= 3; i++) await device.client.publishAsync('tasks/thumbnail', JSON.stringify(thumb(i)), { qos: 1 })
    await waitUntil(() => b!.broker.admin.group(THUMBNAILS).depth === 3, 'three tasks waiting')
    expect(await b.broker.admin.purgeGroup(THUMBNAILS)).toEqual({ purged: 3 })
    expect(b.broker.admin.group(THUMBNAILS)).toMatchObject({ depth: 0, counters: { purged: 3 } })
    await b.restart()
    expect(b.broker.admin.group(THUMBNAILS).depth).toBe(0)

    const member = await raw()
    await member.client.subscribeAsync('$share/workers/jobs/#', { qos: 1 })
    expect((await failure(() => b!.broker.admin.deleteGroup('workers/jobs/#'))).code).toBe(ErrorCodes.GROUP_HAS_MEMBERS)
    await member.client.unsubscribeAsync('$share/workers/jobs/#')
    await b.broker.admin.deleteGroup('workers/jobs/#')
    expect(b.broker.admin.groups().map((g) => g.key)).not.toContain('workers/jobs/#')
    expect((await failure(() => b!.broker.admin.purgeGroup('workers/jobs/#'))).code).toBe(ErrorCodes.GROUP_NOT_FOUND)
  })

  it('dead letters from the task gate: listed with reason and issues; requeue of a still-invalid one makes a new dead letter; delete; bad selections', async () => {
    b = await startBroker()
    const device = await raw({ clientId: 'device-7' })
    await device.client.publishAsync('tasks/thumbnail', JSON.stringify({ imageUrl: 'https://example.com/a.png', width: 64 }), { qos: 1 })
    await waitUntil(() => b!.broker.admin.deadLetters(undefined, 100).length === 1, 'one dead letter')
    const [dead] = b.broker.admin.deadLetters(undefined, 100)
    expect(dead).toMatchObject({
      topic: '$fleetq/dead/thumbnail', taskType: 'thumbnail', reason: 'validation', error: null, attempts: null,
      payload: JSON.stringify({ imageUrl: 'https://example.com/a.png', width: 64 }), task: null, record: { clientId: 'device-7' }
    })
    expect(dead!.id).toMatch(/^\d+$/)
    expect(dead!.issues.map((i) => i.message).join(' ')).toContain('height')
    expect(b.broker.admin.deadLetter(dead!.id)).toEqual(dead)
    expect(b.broker.admin.deadLetters('device-report', 100)).toEqual([])
    expect(b.broker.admin.status().deadLetters).toBe(1)

    // Nothing fixed: it goes through the gate again and is refused again, as a new dead letter.
    expect(await b.broker.admin.requeueDeadLetters({ ids: [dead!.id] })).toEqual({ requeued: 1, skipped: [] })
    await waitUntil(() => b!.broker.admin.deadLetters(undefined, 100).some((d) => d.id !== dead!.id), 'the new dead letter')
    const [again] = b.broker.admin.deadLetters(undefined, 100)
    expect(b.broker.admin.deadLetters(undefined, 100)).toHaveLength(1)
    expect(again).toMatchObject({ reason: 'validation', record: { clientId: null } })
    expect(JSON.parse(again!.payload!)).toMatchObject({ type: 'thumbnail', attempt: 1, producer: 'admin', payload: { width: 64 } })
    expect((await failure(() => b!.broker.admin.deadLetter(dead!.id))).code).toBe(ErrorCodes.DEAD_LETTER_NOT_FOUND)

    for (const selection of [{}, { ids: [again!.id], all: true as const }, { ids: [] }, { type: '' }]) {
      expect((await failure(() => b!.broker.admin.requeueDeadLetters(selection))).code).toBe(ErrorCodes.REQUEST_INVALID)
    }
    expect((await failure(() => b!.broker.admin.requeueDeadLetters({ ids: [again!.id, '999999'] }))).code).toBe(ErrorCodes.DEAD_LETTER_NOT_FOUND)
    expect(b.broker.admin.deadLetters(undefined, 100)).toHaveLength(1) // nothing requeued
    await b.broker.admin.deleteDeadLetter(again!.id)
    expect(b.broker.admin.deadLetters(undefined, 100)).toEqual([])
    expect((await failure(() => b!.broker.admin.deleteDeadLetter(again!.id))).code).toBe(ErrorCodes.DEAD_LETTER_NOT_FOUND)
    expect((await failure(() => b!.broker.admin.deadLetter('abc'))).code).toBe(ErrorCodes.DEAD_LETTER_NOT_FOUND)
  })

  it('a worker\'s dead letter requeued: a healthy worker completes it as a new first attempt; an unrecoverable record is skipped and stays', async () => {
    b = await startBroker()
    const failing = await thumbnailWorker(() => { throw new UnrecoverableError('disk full') })
    const producer = await fleetq()
    const handle = await producer.submit('thumbnail', thumb(7))
    await expect(handle.result()).rejects.toBeInstanceOf(TaskFailedError)
    await failing.worker.close()
    // A submission kept only as base64 (not UTF-8) cannot be submitted again.
    const device = await raw()
    await device.client.publishAsync('tasks/thumbnail', Buffer.from([0xff, 0x00, 0xfe]), { qos: 1 })
    await waitUntil(() => b!.broker.admin.deadLetters(undefined, 100).length === 2, 'two dead letters')
    const [fromWorker, binary] = b.broker.admin.deadLetters(undefined, 100)
    expect(fromWorker).toMatchObject({ reason: 'unrecoverable', error: 'disk full', attempts: 1, payload: null, task: { id: handle.id, type: 'thumbnail', payload: thumb(7) } })
    expect(binary).toMatchObject({ reason: 'validation', payload: null })
    // A limit keeps the oldest, or with `newest` the newest: each listed oldest first.
    expect(b.broker.admin.deadLetters(undefined, 1).map((d) => d.id)).toEqual([fromWorker!.id])
    expect(b.broker.admin.deadLetters(undefined, 1, { newest: true }).map((d) => d.id)).toEqual([binary!.id])
    expect(b.broker.admin.deadLetters(undefined, 2, { newest: true }).map((d) => d.id)).toEqual([fromWorker!.id, binary!.id])

    const healthy = await thumbnailWorker(() => 'done')
    const result = await b.broker.admin.requeueDeadLetters({ all: true })
    expect(result.requeued).toBe(1)
    expect(result.skipped).toEqual([{ id: binary!.id, reason: 'the original submission was not kept as text' }])
    await waitUntil(() => healthy.seen.length === 1, 'the requeued task at the healthy worker')
    expect(healthy.seen[0]).toEqual({ payload: thumb(7), attempt: 1, producer: 'admin' })
    await waitUntil(() => b!.broker.admin.group(THUMBNAILS).inflight === 0, 'the requeued task acknowledged')
    expect(b.broker.stats().tasks.byType['thumbnail']).toMatchObject({ submitted: 2 })
    expect(b.broker.admin.deadLetters(undefined, 100).map((d) => d.id)).toEqual([binary!.id])
  })

  it('submitTask: accepted into the type\'s group and run by a worker; unknown type and invalid payload refused with nothing published', async () => {
    b = await startBroker()
    const submitted = await b.broker.admin.submitTask('thumbnail', thumb(5), { maxAttempts: 2, idempotencyKey: 'once' })
    expect(submitted).toMatchObject({ type: 'thumbnail', topic: 'tasks/thumbnail' })
    expect(b.broker.admin.group(THUMBNAILS).depth).toBe(1)
    // The same idempotency key: the first task's id, nothing more queued.
    expect(await b.broker.admin.submitTask('thumbnail', thumb(5), { idempotencyKey: 'once' })).toEqual(submitted)
    expect(b.broker.admin.group(THUMBNAILS).depth).toBe(1)

    const unknown = await failure(() => b!.broker.admin.submitTask('no-such-type', {}, {}))
    expect(unknown.code).toBe(ErrorCodes.UNKNOWN_TASK_TYPE)
    const invalid = await failure(() => b!.broker.admin.submitTask('thumbnail', { width: 64 }, {}))
    expect(invalid).toBeInstanceOf(AdminError)
    expect(invalid.code).toBe(ErrorCodes.REQUEST_INVALID)
    expect((invalid as AdminError).issues.map((i) => i.message).join(' ')).toContain('imageUrl')
    expect((await failure(() => b!.broker.admin.submitTask('thumbnail', thumb(1), { maxAttempts: 0 }))).code).toBe(ErrorCodes.REQUEST_INVALID)
    expect(b.broker.admin.group(THUMBNAILS).depth).toBe(1)
    expect(b.broker.admin.deadLetters(undefined, 100)).toEqual([])

    const { seen } = await thumbnailWorker()
    await waitUntil(() => seen.length === 1, 'the submitted task at a worker')
    expect(seen[0]).toEqual({ payload: thumb(5), attempt: 1, producer: 'admin' })
  })

  it('schedules: pause fires no tick (also across a restart), resume skips the missed ones, trigger publishes now; lateness is counted', async () => {
    const clock = new ManualClock(new Date('2026-01-01T00:00:05Z'))
    b = await startBroker({ clock })
    const topic = uniqueTopic('sched')
    await b.broker.admin.upsertSchedule({ name: 'ten', cron: '*/10 * * * * *', topic, payload: 'tick' })
    let listener = await raw()
    await listener.client.subscribeAsync(topic, { qos: 1 })
    clock.set(new Date('2026-01-01T00:00:10Z'))
    await waitUntil(() => listener.received.length === 1, 'the first tick')
    expect(b.broker.stats().scheduler).toMatchObject({ fired: 1, lateness: { count: 1, sumMs: 0, maxMs: 0 } })

    expect(await b.broker.admin.pauseSchedule('ten')).toMatchObject({ paused: true, nextRunAt: null, lastRunAt: '2026-01-01T00:00:10.000Z' })
    clock.set(new Date('2026-01-01T00:00:30Z'))
    await expectNothingFor(300, () => listener.received.length > 1, 'a tick of a paused schedule')
    await b.restart()
    expect(b.broker.admin.schedule('ten').paused).toBe(true)
    expect(b.broker.admin.status().schedules).toEqual({ count: 1, paused: 1 })
    listener = await raw()
    await listener.client.subscribeAsync(topic, { qos: 1 })
    clock.set(new Date('2026-01-01T00:00:45Z'))
    await expectNothingFor(300, () => listener.received.length > 0, 'a tick of a paused schedule after the restart')

    // Trigger: now, once, paused or not; the timetable stays.
    expect(await b.broker.admin.triggerSchedule('ten')).toMatchObject({ lastRunAt: '2026-01-01T00:00:10.000Z', paused: true })
    await waitUntil(() => listener.received.length === 1, 'the triggered message')
    expect(listener.received[0]!.payload).toBe('tick')

    const resumed = await b.broker.admin.resumeSchedule('ten')
    expect(resumed).toMatchObject({ paused: false, nextRunAt: '2026-01-01T00:00:50.000Z' })
    expect(b.broker.stats().scheduler).toMatchObject({ skipped: 3, triggered: 1, paused: 0 }) // 20, 30, 40
    await expectNothingFor(200, () => listener.received.length > 1, 'a missed tick fired on resume')
    clock.set(new Date('2026-01-01T00:00:50Z'))
    await waitUntil(() => listener.received.length === 2, 'the next tick after resume')
    expect(b.broker.admin.schedule('ten').lastRunAt).toBe('2026-01-01T00:00:50.000Z')
    expect((await failure(() => b!.broker.admin.pauseSchedule('nope'))).code).toBe(ErrorCodes.SCHEDULE_NOT_FOUND)
    expect((await failure(() => b!.broker.admin.triggerSchedule('nope'))).code).toBe(ErrorCodes.SCHEDULE_NOT_FOUND)
  })

  it('status and log level', async () => {
    b = await startBroker()
    await raw()
    const status = b.broker.admin.status()
    expect(status).toMatchObject({
      id: b.broker.aedes.id, connectedClients: 1, queuedMessages: 0, deadLetters: 0, delayedPending: 0,
      schedules: { count: 0, paused: 0 }, logLevel: 'silent', listeners: [{ kind: 'mqtt', port: b.port }]
    })
    expect(status.version).toMatch(/^\d+\.\d+\.\d+/)
    expect(status.groups.count).toBeGreaterThanOrEqual(2) // dead letters, and each known task type
    expect(status.memory.rssBytes).toBeGreaterThan(0)
    // The broker's own $SYS topics are retained too.
    expect(status.retainedMessages).toBe((await b.broker.admin.retained('$SYS/#', 1000)).length)
    b.broker.admin.setLogLevel('debug')
    expect(b.broker.admin.logLevel()).toBe('debug')
    expect(b.broker.logger.level).toBe('debug')
    b.broker.admin.setLogLevel('silent')
    expect((await failure(() => b!.broker.admin.setLogLevel('loud' as 'info'))).code).toBe(ErrorCodes.REQUEST_INVALID)
  })
})
