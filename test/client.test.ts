import { afterEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import {
  ErrorCodes, connect, createWorker, FleetqClientError, TaskValidationError, UnknownTaskTypeError,
  type Client, type Message, type TaskEnvelope, type Worker
} from '../client/index.js'
import { matchTopic } from '../protocol/topics.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { testSchemas } from './helpers/task-schemas.js'
import { connectCollecting, type Received } from './helpers/connect.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'
import { deferred } from './helpers/deferred.js'

const thumb = { imageUrl: 'https://example.com/a.png', width: 64, height: 64 }

describe('matchTopic', () => {
  it('returns the values matched by + and #, in order, or null', () => {
    expect(matchTopic('fleet/+/+/temp', 'fleet/s1/d7/temp')).toEqual(['s1', 'd7'])
    expect(matchTopic('fleet/+/#', 'fleet/s1/d7/temp/raw')).toEqual(['s1', 'd7/temp/raw'])
    expect(matchTopic('fleet/#', 'fleet')).toEqual([''])
    expect(matchTopic('fleet/+', 'fleet/a/b')).toBeNull()
    expect(matchTopic('fleet/a', 'fleet/b')).toBeNull()
    expect(matchTopic('a/b', 'a/b')).toEqual([])
    expect(matchTopic('$share/g/tasks/+', 'tasks/thumbnail')).toEqual(['thumbnail'])
    // [MQTT-4.7.2-1]
    expect(matchTopic('#', '$SYS/x')).toBeNull()
    expect(matchTopic('+/x', '$fleetq/x')).toBeNull()
    expect(matchTopic('$fleetq/results/c1/+', '$fleetq/results/c1/t9')).toEqual(['t9'])
  })
})

describe('client: connect, publish, subscribe', () => {
  let b: TestBroker | undefined
  const clients: Client[] = []
  const raws: MqttClient[] = []
  const workers: Worker[] = []
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close({ timeoutMs: 1000 })))
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await Promise.all(raws.splice(0).map((c) => c.endAsync(true)))
    await b?.close()
    b = undefined
  })

  async function client (options: Parameters<typeof connect>[1] = {}): Promise<Client> {
    const c = await connect(b!.url, { schemas: await testSchemas(), ...options })
    clients.push(c)
    return c
  }

  async function spy (filter: string): Promise<Received[]> {
    const { client: raw, received } = await connectCollecting(b!.url, {})
    raws.push(raw)
    await raw.subscribeAsync(filter, { qos: 1 })
    return received
  }

  it('publishes and subscribes with wildcard params, JSON helpers and unsubscribe', async () => {
    b = await startBroker()
    const root = uniqueTopic('fleet')
    const sub = await client()
    const pub = await client()
    const got: Message[] = []
    const off = await sub.subscribe(`${root}/+/+/#`, (m) => { got.push(m) }, { qos: 1 })
    await pub.publishJson(`${root}/site1/dev7/temp/raw`, { c: 21.5 }, { qos: 1 })
    await pub.publish(`${root}/site2/dev8`, Buffer.from('bin'), { qos: 0 })
    await waitUntil(() => got.length === 2, 'two messages')
    expect(got[0]!.params).toEqual(['site1', 'dev7', 'temp/raw'])
    expect(got[0]!.json()).toEqual({ c: 21.5 })
    expect(got[0]!.packet.qos).toBe(1)
    expect(got[1]!.params).toEqual(['site2', 'dev8', ''])
    expect(got[1]!.payload.toString()).toBe('bin')

    await off()
    await off() // idempotent
    await pub.publish(`${root}/site1/dev7`, 'after', { qos: 1 })
    await expectNothingFor(200, () => got.length > 2, 'a message after unsubscribing')
  })

  it('retained messages reach later subscribers; a throwing handler is reported as an error event, not a crash', async () => {
    b = await startBroker()
    const root = uniqueTopic('state')
    const pub = await client()
    await pub.publish(`${root}/dev1`, 'online', { qos: 1, retain: true })
    const sub = await client()
    const errors: Error[] = []
    sub.on('error', (err) => errors.push(err))
    const got: string[] = []
    await sub.subscribe(`${root}/+`, (m) => { got.push(m.payload.toString()); throw new Error('handler bug') }, { qos: 1 })
    await waitUntil(() => got.length === 1 && errors.length === 1, 'the retained message and the error')
    expect(got).toEqual(['online'])
    expect(errors[0]!.message).toBe('handler bug')
  })

  it('fails to connect with FLEETQ_CONNECT_FAILED; close() is idempotent and later calls fail with FLEETQ_CLIENT_CLOSED', async () => {
    b = await startBroker()
    const port = b.port
    await b.close()
    b = undefined
    await expect(connect(`mqtt://127.0.0.1:${port}`, { connectTimeout: 2000 })).rejects.toMatchObject({ code: ErrorCodes.CONNECT_FAILED })
    await expect(connect('mqtt://127.0.0.1:1', { clientId: 'a/b' })).rejects.toThrow(/clientId/)

    b = await startBroker()
    const c = await client()
    const first = c.close()
    expect(c.close()).toBe(first)
    await first
    expect(c.connected).toBe(false)
    await expect(c.publish('x', 'y')).rejects.toMatchObject({ code: ErrorCodes.CLIENT_CLOSED })
    await expect(c.subscribe('x', () => undefined)).rejects.toBeInstanceOf(FleetqClientError)
  })

  it('a subscription the broker refuses (SUBACK 0x80) fails with FLEETQ_SUBSCRIBE_REFUSED', async () => {
    b = await startBroker()
    const c = await client()
    // `$delayed/...` is a command, never a topic: the broker grants it 0x80.
    await expect(c.subscribe('$delayed/1/x', () => undefined)).rejects.toMatchObject({ code: ErrorCodes.SUBSCRIBE_REFUSED })
    // the connection stays up and usable [MQTT-3.9.3]
    await expect(c.publish(uniqueTopic('ok'), 'y', { qos: 1 })).resolves.toBeUndefined()
  })

  it('reconnects after the broker restarts and keeps its subscriptions (events: offline, reconnect, connect)', async () => {
    b = await startBroker()
    const root = uniqueTopic('r')
    const sub = await client({ reconnectPeriod: 50, clientId: 'sub-restart' })
    const events: string[] = []
    sub.on('offline', () => events.push('offline'))
    sub.on('reconnect', () => events.push('reconnect'))
    sub.on('connect', () => events.push('connect'))
    sub.on('error', () => undefined)
    const got: string[] = []
    await sub.subscribe(`${root}/#`, (m) => { got.push(m.payload.toString()) }, { qos: 1 })
    await b.restart()
    await waitUntil(() => events.includes('connect'), 'the client to reconnect')
    expect(events.slice(0, 2)).toEqual(['offline', 'reconnect'])
    const pub = await client()
    await pub.publish(`${root}/a`, 'after restart', { qos: 1 })
    await waitUntil(() => got.length === 1, 'the message after the restart')
    expect(got).toEqual(['after restart'])
  })

  it('submit: refuses an invalid payload with every failing path before anything is sent', async () => {
    b = await startBroker()
    const seen = await spy('tasks/#')
    const producer = await client()
    const bad = { imageUrl: 'not a url', width: 0, extra: true } as unknown as typeof thumb
    const err = await producer.submit('thumbnail', bad).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TaskValidationError)
    expect(err).toMatchObject({ code: ErrorCodes.PAYLOAD_INVALID, taskType: 'thumbnail' })
    const issues = (err as TaskValidationError).issues
    expect(issues.map((i) => i.keyword).sort()).toEqual(expect.arrayContaining(['additionalProperties', 'format', 'minimum', 'required']))
    expect(issues.find((i) => i.keyword === 'format')!.path).toBe('/imageUrl')
    expect(issues.find((i) => i.keyword === 'minimum')!.path).toBe('/width')

    await expect(producer.submit('no-such-type', {})).rejects.toBeInstanceOf(UnknownTaskTypeError)
    await expect(producer.submit('thumbnail', thumb, { delay: -1 })).rejects.toMatchObject({ code: ErrorCodes.DELAY_INVALID, message: expect.stringMatching(/delay/) })
    await expect(producer.submit('thumbnail', thumb, { delay: Number.NaN })).rejects.toMatchObject({ code: ErrorCodes.DELAY_INVALID })
    await expect(producer.submit('thumbnail', thumb, { maxAttempts: 0 })).rejects.toMatchObject({ code: ErrorCodes.SUBMIT_OPTIONS_INVALID, message: expect.stringMatching(/maxAttempts/) })
    await expect(producer.submit('thumbnail', thumb, { backoff: { type: 'linear' as 'fixed', delayMs: 1 } })).rejects.toMatchObject({ code: ErrorCodes.BACKOFF_INVALID, message: expect.stringMatching(/backoff.type/) })
    // only the one valid submission below reaches the task topic
    await producer.submit('thumbnail', thumb)
    await waitUntil(() => seen.length === 1, 'the valid task')
    await expectNothingFor(200, () => seen.length > 1, 'an invalid task on the wire')
  })

  it('submit: wraps the payload in the task envelope and publishes it at QoS 1 to tasks/{type}', async () => {
    b = await startBroker()
    const seen = await spy('tasks/#')
    const producer = await client({ clientId: 'producer-env' })
    const before = Date.now()
    const handle = await producer.submit('thumbnail', thumb, {
      maxAttempts: 5, timeout: 1234, idempotencyKey: 'k1', backoff: { type: 'fixed', delayMs: 10 }
    })
    await waitUntil(() => seen.length === 1, 'the task')
    const envelope = JSON.parse(seen[0]!.payload) as TaskEnvelope
    expect(seen[0]!.topic).toBe('tasks/thumbnail')
    expect(seen[0]!.packet.qos).toBe(1)
    expect(envelope).toMatchObject({
      id: handle.id,
      type: 'thumbnail',
      payload: thumb,
      attempt: 1,
      maxAttempts: 5,
      timeoutMs: 1234,
      idempotencyKey: 'k1',
      producer: 'producer-env',
      replyTo: `$fleetq/results/producer-env/${handle.id}`,
      backoff: { type: 'fixed', delayMs: 10 }
    })
    expect(handle.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(Date.parse(envelope.createdAt)).toBeGreaterThanOrEqual(before - 1000)

    const defaults = await producer.submit('thumbnail', thumb)
    await waitUntil(() => seen.length === 2, 'the second task')
    expect(JSON.parse(seen[1]!.payload)).toMatchObject({
      id: defaults.id, maxAttempts: 3, timeoutMs: 60000,
      backoff: { type: 'exponential', delayMs: 1000, maxDelayMs: 60000, jitter: 0.2 }
    })
  })

  it('a producer with a persistent session gets the result of a task that finished while it was offline', async () => {
    b = await startBroker()
    const release = deferred()
    let started = false
    const workerClient = await client()
    const worker = await createWorker(workerClient, 'thumbnail', async (p) => {
      started = true
      await release.promise
      return { url: `${p.imageUrl}?w=${p.width}` }
    })
    workers.push(worker)
    const completed = new Promise((resolve) => worker.once('completed', resolve))

    const producer = await connect(b.url, { clientId: 'offline-producer', clean: false, schemas: await testSchemas() })
    const handle = await producer.submit('thumbnail', thumb)
    await waitUntil(() => started, 'the task to start')
    await producer.close()
    await expect(handle.result()).rejects.toMatchObject({ code: ErrorCodes.CLIENT_CLOSED })
    release.resolve()
    await completed

    const again = await client({ clientId: 'offline-producer', clean: false })
    await expect(again.task(handle.id).result()).resolves.toEqual({ url: 'https://example.com/a.png?w=64' })
  })

  it('progress reaches the producer\'s handle; two producers each get only their own results', async () => {
    b = await startBroker()
    const producer = await client()
    const other = await client()
    const workerClient = await client()
    // A handle exists once submit() resolves, which can be after the worker
    // started: progress waits until the test listens, or the first could be missed.
    const listening = deferred()
    const worker = await createWorker(workerClient, 'thumbnail', async (_p, ctx) => {
      await listening.promise
      await ctx.progress(25)
      await ctx.progress(75)
      return 'done'
    })
    workers.push(worker)
    const otherProgress: number[] = []
    const h2 = await other.submit('thumbnail', thumb)
    h2.on('progress', (n) => otherProgress.push(n))
    const handle = await producer.submit('thumbnail', thumb)
    const progress: number[] = []
    handle.on('progress', (n) => progress.push(n))
    listening.resolve()
    await expect(handle.result()).resolves.toBe('done')
    await expect(h2.result()).resolves.toBe('done')
    expect(progress).toEqual([25, 75])
    expect(otherProgress).toEqual([25, 75])
  })

  it('a progress listener added after the worker reported hears the latest value first, then the rest', async () => {
    b = await startBroker()
    const producer = await client()
    const workerClient = await client()
    const reported = deferred()
    const goOn = deferred()
    const worker = await createWorker(workerClient, 'thumbnail', async (_p, ctx) => {
      await ctx.progress(10)
      await ctx.progress(40)
      reported.resolve()
      await goOn.promise
      await ctx.progress(90)
      return 'done'
    })
    workers.push(worker)
    const handle = await producer.submit('thumbnail', thumb)
    await reported.promise
    // Both reports reached the handle before anyone listened (as they can before submit() resolves).
    await waitUntil(() => handle.progress === 40, 'the producer to receive progress 40')
    const heard: number[] = []
    handle.on('progress', (n) => heard.push(n))
    expect(heard).toEqual([]) // not from inside on(): as any event, after it returns
    goOn.resolve()
    await expect(handle.result()).resolves.toBe('done')
    expect(heard).toEqual([40, 90])
    expect(handle.progress).toBe(90)
  })

  it('lazily loads the shipped schemas on the first submit when none are given', async () => {
    b = await startBroker()
    const c = await connect(b.url)
    clients.push(c)
    await expect(c.submit('thumbnail', { ...thumb, width: 99999 })).rejects.toBeInstanceOf(TaskValidationError)
    const h = await c.submit('device-report', { deviceId: 'd1', site: 's1', reportedAt: new Date().toISOString(), readings: [{ sensor: 'temp', value: 20 }] })
    expect(h.id).toEqual(expect.any(String))
  })
})

// Type-level checks: submit is checked against the generated payload types.
export async function typeChecks (c: Client): Promise<void> {
  await c.submit('thumbnail', { imageUrl: 'https://x/y.png', width: 1, height: 1 })
  // @ts-expect-error width is required
  await c.submit('thumbnail', { imageUrl: 'https://x/y.png', height: 1 })
  // @ts-expect-error width is a number
  await c.submit('thumbnail', { imageUrl: 'https://x/y.png', width: '1', height: 1 })
  // types registered at run time take any payload
  await c.submit('custom-type', { anything: true })
}
