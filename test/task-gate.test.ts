import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import type { TaskEnvelope } from '../protocol/generated/task-types.js'
import { TaskSchemas } from '../protocol/schema-registry.js'
import { Keyspace } from '../broker/persistence/keyspace.js'
import { LevelIdempotencyStore, type IdempotencyStore } from '../broker/tasks/idempotency-keys.js'
import type { GateDeadLetter } from '../protocol/messages.js'
import { TaskGate, type GatePacket, type TaskGateOptions } from '../broker/tasks/task-gate.js'

const logger = pino({ level: 'silent' })
const thumbnail = { imageUrl: 'https://img.example.com/cat.jpg', width: 320, height: 240 }

let schemas: TaskSchemas
beforeAll(async () => { schemas = await TaskSchemas.load() })

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  vi.useRealTimers()
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function idempotencyStore (keyspace: Keyspace): IdempotencyStore {
  return new LevelIdempotencyStore(keyspace.sublevel('idempotency-keys'), keyspace.writer)
}

async function memoryStore (): Promise<{ store: IdempotencyStore, keyspace: Keyspace }> {
  const keyspace = await Keyspace.open()
  cleanups.push(() => keyspace.close())
  return { store: idempotencyStore(keyspace), keyspace }
}

async function createGate (options: Partial<TaskGateOptions> = {}, store?: IdempotencyStore): Promise<TaskGate> {
  const gate = await TaskGate.create({ schemas, store: store ?? (await memoryStore()).store, logger, ...options })
  cleanups.push(() => gate.close())
  return gate
}

function packet (topic: string, payload: unknown, qos = 1): GatePacket {
  return { topic, payload: Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)), qos, retain: false }
}

function json<T> (p: GatePacket): T {
  return JSON.parse(p.payload.toString()) as T
}

function envelope (overrides: Partial<TaskEnvelope> = {}): TaskEnvelope {
  return {
    id: crypto.randomUUID(),
    type: 'thumbnail',
    payload: thumbnail,
    attempt: 1,
    maxAttempts: 5,
    createdAt: new Date().toISOString(),
    timeoutMs: 30_000,
    replyTo: '$fleetq/results/producer-1/abc',
    producer: 'producer-1',
    ...overrides
  }
}

describe('bare payloads', () => {
  it('wraps a valid bare payload into a valid envelope', async () => {
    const gate = await createGate()
    const p = packet('tasks/thumbnail', thumbnail)
    const before = Date.now()
    const decision = gate.inspect(p, 'sensor-17')
    expect(decision.action).toBe('wrapped')
    expect(p.topic).toBe('tasks/thumbnail')
    const wrapped = json<TaskEnvelope>(p)
    expect(schemas.validateEnvelope(wrapped)).toEqual([])
    expect(wrapped).toMatchObject({ type: 'thumbnail', payload: thumbnail, attempt: 1, maxAttempts: 3, timeoutMs: 60_000, producer: 'sensor-17' })
    expect(wrapped.id).toMatch(/^[0-9a-f-]{36}$/)
    expect(decision.taskId).toBe(wrapped.id)
    expect(wrapped.replyTo).toBe(`$fleetq/results/sensor-17/${wrapped.id}`)
    expect(Date.parse(wrapped.createdAt)).toBeGreaterThanOrEqual(before - 1000)
    expect(gate.stats()).toMatchObject({ accepted: 1, wrapped: 1, invalid: 0, duplicates: 0 })
  })

  it('accepts a string payload and gives each wrapped task its own id', async () => {
    const gate = await createGate({ wrapMaxAttempts: 7, wrapTimeoutMs: 1000 })
    const a: GatePacket = { topic: 'tasks/thumbnail', payload: JSON.stringify(thumbnail), qos: 0 }
    const b = packet('tasks/thumbnail', thumbnail)
    gate.inspect(a, null)
    gate.inspect(b, null)
    const [ea, eb] = [json<TaskEnvelope>(a), json<TaskEnvelope>(b)]
    expect(ea.id).not.toBe(eb.id)
    expect(ea).toMatchObject({ maxAttempts: 7, timeoutMs: 1000 })
    // No client (a will, the broker itself): no producer to answer.
    expect(ea.producer).toBeUndefined()
    expect(ea.replyTo).toBeUndefined()
  })

  it('gives no reply topic to a client id that is not one topic level', async () => {
    const gate = await createGate()
    const p = packet('tasks/thumbnail', thumbnail)
    gate.inspect(p, 'site/7')
    expect(json<TaskEnvelope>(p)).toMatchObject({ producer: 'site/7' })
    expect(json<TaskEnvelope>(p).replyTo).toBeUndefined()
  })
})

describe('envelopes', () => {
  it('lets a valid full envelope pass untouched', async () => {
    const gate = await createGate()
    const task = envelope()
    const p = packet('tasks/thumbnail', task)
    const original = p.payload
    const decision = gate.inspect(p, 'producer-1')
    expect(decision).toEqual({ action: 'pass', taskId: task.id })
    expect(p.topic).toBe('tasks/thumbnail')
    expect(p.payload).toBe(original)
    expect(gate.stats()).toMatchObject({ accepted: 1, wrapped: 0 })
  })

  it('accepts a retry with broker and worker fields', async () => {
    const gate = await createGate()
    const p = packet('tasks/thumbnail', envelope({ attempt: 2, deliveryCount: 3, previousErrors: ['boom'], backoff: { type: 'fixed', delayMs: 10 } }))
    expect(gate.inspect(p, 'worker-1').action).toBe('pass')
  })

  it('dead-letters an envelope whose payload is invalid, with paths into the message', async () => {
    const gate = await createGate()
    const task = envelope({ payload: { ...thumbnail, width: 'wide' } })
    const p = packet('tasks/thumbnail', task)
    const decision = gate.inspect(p, 'producer-1')
    expect(decision.action).toBe('dead-lettered')
    expect(decision.issues).toEqual([{ path: '/payload/width', message: 'must be integer', keyword: 'type' }])
    expect(p.topic).toBe('$fleetq/dead/thumbnail')
  })

  it('dead-letters an envelope with bad envelope fields', async () => {
    const gate = await createGate()
    const p = packet('tasks/thumbnail', envelope({ attempt: 0, createdAt: 'now' }))
    const decision = gate.inspect(p, 'producer-1')
    expect(decision.issues?.map((i) => [i.path, i.keyword]).sort()).toEqual([['/attempt', 'minimum'], ['/createdAt', 'format']])
  })

  it('takes an object whose type is not the topic\'s for a bare payload', async () => {
    const gate = await createGate()
    const p = packet('tasks/thumbnail', envelope({ type: 'device-report' }))
    const decision = gate.inspect(p, 'c')
    expect(decision.action).toBe('dead-lettered')
    expect(decision.issues).toContainEqual({ path: '/id', message: 'must NOT have additional properties', keyword: 'additionalProperties' })
  })
})

describe('invalid submissions', () => {
  it('rewrites topic and payload to a dead letter with the issues and the client id', async () => {
    const gate = await createGate()
    const text = JSON.stringify({ imageUrl: 'not a uri', width: 0, extra: true })
    const p: GatePacket = { topic: 'tasks/thumbnail', payload: Buffer.from(text), qos: 1, retain: true }
    const decision = gate.inspect(p, 'camera-3')
    expect(decision.action).toBe('dead-lettered')
    expect(p.topic).toBe('$fleetq/dead/thumbnail')
    expect(p.retain).toBe(false)
    expect(p.qos).toBe(1)
    const record = json<GateDeadLetter>(p)
    expect(record).toMatchObject({ reason: 'validation', taskType: 'thumbnail', topic: 'tasks/thumbnail', clientId: 'camera-3', payload: text, bytes: text.length })
    expect(Date.parse(record.at)).not.toBeNaN()
    expect(record.issues.map((i) => [i.path, i.keyword]).sort())
      .toEqual([['/extra', 'additionalProperties'], ['/height', 'required'], ['/imageUrl', 'format'], ['/width', 'minimum']])
    expect(record.issues).toEqual(decision.issues)
    expect(gate.stats()).toMatchObject({ accepted: 0, invalid: 1 })
  })

  it('dead-letters what is not JSON, with keyword json', async () => {
    const gate = await createGate()
    const p = packet('tasks/thumbnail', 'width=320')
    const decision = gate.inspect(p, 'c1')
    expect(decision.issues).toEqual([expect.objectContaining({ path: '', keyword: 'json' })])
    expect(json<GateDeadLetter>(p).payload).toBe('width=320')
  })

  it('keeps a binary payload as base64', async () => {
    const gate = await createGate()
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80])
    const p: GatePacket = { topic: 'tasks/thumbnail', payload: bytes, qos: 0 }
    gate.inspect(p, 'c1')
    const record = json<GateDeadLetter>(p)
    expect(record.issues[0]).toMatchObject({ keyword: 'json', message: 'must be UTF-8 JSON' })
    expect(record.payload).toBeUndefined()
    expect(record.payloadBase64).toBe(bytes.toString('base64'))
  })

  it('refuses unknown task types unless allowed', async () => {
    const gate = await createGate()
    const p = packet('tasks/transcode', { file: 'a.mp4' })
    const decision = gate.inspect(p, 'c1')
    expect(decision.action).toBe('dead-lettered')
    expect(p.topic).toBe('$fleetq/dead/transcode')
    expect(json<GateDeadLetter>(p)).toMatchObject({ reason: 'unknown-type', taskType: 'transcode', issues: [{ keyword: 'taskType' }] })

    const open = await createGate({ schemas: await TaskSchemas.load({ allowUnknownTypes: true }) })
    const q = packet('tasks/transcode', { file: 'a.mp4' })
    expect(open.inspect(q, 'c1').action).toBe('wrapped')
    expect(json<TaskEnvelope>(q)).toMatchObject({ type: 'transcode', payload: { file: 'a.mp4' } })
    // Allowed, but a type the envelope cannot carry is still refused.
    const r = packet('tasks/Transcode', { file: 'a.mp4' })
    expect(open.inspect(r, 'c1').issues).toEqual([expect.objectContaining({ path: '/type', keyword: 'pattern' })])
  })

  it('refuses oversize payloads: maxPayloadBytes, and huge messages without parsing them', async () => {
    const gate = await createGate({ schemas: await TaskSchemas.load({ maxPayloadBytes: 1024 }) })
    const big = { ...thumbnail, imageUrl: `https://x.example/${'a'.repeat(1100)}` }
    const p = packet('tasks/thumbnail', big)
    expect(gate.inspect(p, 'c1').issues).toEqual([expect.objectContaining({ path: '', keyword: 'maxBytes' })])
    const q = packet('tasks/thumbnail', envelope({ payload: big }))
    expect(gate.inspect(q, 'c1').issues).toEqual([expect.objectContaining({ path: '/payload', keyword: 'maxBytes' })])

    const huge: GatePacket = { topic: 'tasks/thumbnail', payload: Buffer.alloc(200 * 1024, 0x61), qos: 1 }
    expect(gate.inspect(huge, 'c1').issues).toEqual([expect.objectContaining({ keyword: 'maxBytes' })])
    const record = json<GateDeadLetter>(huge)
    // The record keeps a bounded prefix of the original.
    expect(record).toMatchObject({ truncated: true, bytes: 200 * 1024 })
    expect(record.payload?.length).toBe(64 * 1024)
    expect(gate.stats().invalid).toBe(3)
  })

  it('refuses schema-level oversize (maxLength) with the path', async () => {
    const gate = await createGate()
    const p = packet('tasks/thumbnail', { ...thumbnail, imageUrl: `https://x.example/${'a'.repeat(2100)}` })
    expect(gate.inspect(p, 'c1').issues).toEqual([expect.objectContaining({ path: '/imageUrl', keyword: 'maxLength' })])
  })
})

describe('other topics', () => {
  it('passes non-task topics untouched and uncounted', async () => {
    const gate = await createGate()
    for (const topic of ['fleet/site-1/dev-1/temp', 'tasks', 'tasks/', 'tasks/thumbnail/extra', 'x/tasks/thumbnail', '$fleetq/dead/thumbnail', '$fleetq/results/c/1']) {
      const p = packet(topic, 'not json at all')
      const payload = p.payload
      expect(gate.inspect(p, 'c1')).toEqual({ action: 'pass' })
      expect(p.topic).toBe(topic)
      expect(p.payload).toBe(payload)
    }
    const { byType, ...totals } = gate.stats()
    expect(totals).toEqual({ accepted: 0, wrapped: 0, invalid: 0, duplicates: 0, idempotencyKeys: 0, keysEvicted: 0 })
    for (const counts of Object.values(byType)) expect(Object.values(counts).every((n) => n === 0)).toBe(true)
  })

  it('honours custom prefixes', async () => {
    const gate = await createGate({ topicPrefix: 'jobs/', deadLetterPrefix: 'dead/' })
    const p = packet('jobs/thumbnail', {})
    expect(gate.inspect(p, 'c1').action).toBe('dead-lettered')
    expect(p.topic).toBe('dead/thumbnail')
    const q = packet('tasks/thumbnail', {})
    expect(gate.inspect(q, 'c1').action).toBe('pass')
  })

  it('fails early on bad options', async () => {
    await expect(createGate({ topicPrefix: 'tasks' })).rejects.toThrow(/tasks\.topicPrefix/)
    await expect(createGate({ deadLetterPrefix: 'dead/#/' })).rejects.toThrow(/tasks\.deadLetterPrefix/)
    await expect(createGate({ idempotencyWindowMs: -1 })).rejects.toThrow(expect.objectContaining({ code: 'FLEETQ_CONFIG_INVALID' }))
    await expect(createGate({ maxIdempotencyKeys: 0 })).rejects.toThrow(/maxIdempotencyKeys/)
  })
})

describe('an envelope speaks only for its publisher', () => {
  it('dead-letters a first attempt whose producer is another client', async () => {
    const gate = await createGate()
    const p = packet('tasks/thumbnail', envelope({ producer: 'victim', replyTo: '$fleetq/results/victim/abc' }))
    const decision = gate.inspect(p, 'mallory')
    expect(decision.action).toBe('dead-lettered')
    expect(p.topic).toBe('$fleetq/dead/thumbnail')
    expect(json<{ issues: unknown[] }>(p).issues).toEqual([expect.objectContaining({ path: '/producer', keyword: 'producer' })])
  })

  it('dead-letters a replyTo outside the producer\'s own result topics', async () => {
    const gate = await createGate()
    for (const replyTo of ['$fleetq/results/victim/abc', 'devices/victim/inbox', '$fleetq/results/producer-1x/abc']) {
      const p = packet('tasks/thumbnail', envelope({ replyTo }))
      expect(gate.inspect(p, 'producer-1').action, replyTo).toBe('dead-lettered')
      expect(json<{ issues: unknown[] }>(p).issues).toEqual([expect.objectContaining({ path: '/replyTo', keyword: 'replyTo' })])
    }
  })

  it('lets a worker publish a retry that keeps the producer, with results still to the producer', async () => {
    const gate = await createGate()
    expect(gate.inspect(packet('tasks/thumbnail', envelope({ attempt: 2 })), 'worker-1').action).toBe('pass')
    const redirected = packet('tasks/thumbnail', envelope({ attempt: 2, replyTo: '$fleetq/results/worker-1/abc' }))
    expect(gate.inspect(redirected, 'worker-1').action).toBe('dead-lettered')
  })

  it('asks nothing of the broker\'s own publishes (schedules, delayed messages due)', async () => {
    const gate = await createGate()
    expect(gate.inspect(packet('tasks/thumbnail', envelope({ producer: 'schedule:nightly', replyTo: undefined })), null).action).toBe('pass')
  })
})

describe('idempotency keys', () => {
  // Submitted by client p1, as its envelope says (a first attempt speaks for its publisher only).
  const asP1 = { producer: 'p1', replyTo: '$fleetq/results/p1/x' }
  const keyed = (key: string, overrides: Partial<TaskEnvelope> = {}): GatePacket => packet('tasks/thumbnail', envelope({ idempotencyKey: key, ...asP1, ...overrides }))

  it('accepts the first submission and rewrites later ones within the window to the duplicates topic', async () => {
    const gate = await createGate()
    const first = keyed('order-1')
    const decision = gate.inspect(first, 'p1')
    expect(decision.action).toBe('pass')
    expect(first.topic).toBe('tasks/thumbnail')
    // Two copies in the same tick, before anything is stored: still one task.
    const second = keyed('order-1')
    const payload = second.payload
    const duplicate = gate.inspect(second, 'p1')
    expect(duplicate).toEqual({ action: 'duplicate', taskId: decision.taskId })
    expect(second.topic).toBe('$fleetq/duplicates/thumbnail')
    expect(second.payload).toBe(payload)
    await decision.commit?.()
    expect(gate.inspect(keyed('order-1', { producer: 'p2', replyTo: '$fleetq/results/p2/x' }), 'p2').action).toBe('duplicate')
    // Other keys, and the same key for another type, are not duplicates.
    expect(gate.inspect(keyed('order-2'), 'p1').action).toBe('pass')
    const report = { deviceId: 'd1', site: 's', reportedAt: '2025-01-01T00:00:00Z', readings: [] }
    expect(gate.inspect(packet('tasks/device-report', envelope({ type: 'device-report', payload: report, idempotencyKey: 'order-1', ...asP1 })), 'p1').action).toBe('pass')
    expect(gate.stats()).toMatchObject({ accepted: 3, duplicates: 2, idempotencyKeys: 3 })
  })

  it('checks the key only on a valid submission', async () => {
    const gate = await createGate()
    expect(gate.inspect(keyed('k', { payload: {} }), 'p1').action).toBe('dead-lettered')
    expect(gate.inspect(keyed('k'), 'p1').action).toBe('pass')
  })

  it('accepts the key again after the window', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(new Date('2025-06-01T00:00:00Z'))
    const gate = await createGate({ idempotencyWindowMs: 60_000 })
    expect(gate.inspect(keyed('k'), 'p1').action).toBe('pass')
    vi.setSystemTime(new Date('2025-06-01T00:00:59Z'))
    expect(gate.inspect(keyed('k'), 'p1').action).toBe('duplicate')
    vi.setSystemTime(new Date('2025-06-01T00:01:01Z'))
    expect(gate.inspect(keyed('k'), 'p1').action).toBe('pass')
    // The window starts again from the new submission.
    vi.setSystemTime(new Date('2025-06-01T00:01:30Z'))
    expect(gate.inspect(keyed('k'), 'p1').action).toBe('duplicate')
  })

  it('forgets a released claim, so the publisher\'s retry is not a duplicate', async () => {
    const gate = await createGate()
    const decision = gate.inspect(keyed('k'), 'p1')
    decision.release?.()
    expect(gate.inspect(keyed('k'), 'p1').action).toBe('pass')
  })

  it('bounds the keys kept, oldest first', async () => {
    const { store } = await memoryStore()
    const gate = await createGate({ maxIdempotencyKeys: 2 }, store)
    for (const key of ['a', 'b', 'c']) await gate.inspect(keyed(key), 'p1').commit?.()
    await gate.close()
    expect(gate.stats()).toMatchObject({ idempotencyKeys: 2, keysEvicted: 1 })
    expect(gate.inspect(keyed('a'), 'p1').action).toBe('pass')
    expect(gate.inspect(keyed('c'), 'p1').action).toBe('duplicate')
  })

  it('can be turned off with a window of 0', async () => {
    const gate = await createGate({ idempotencyWindowMs: 0 })
    const decision = gate.inspect(keyed('k'), 'p1')
    expect(decision.commit).toBeUndefined()
    expect(gate.inspect(keyed('k'), 'p1').action).toBe('pass')
  })

  it('keeps committed keys across a restart on LevelDB, and drops expired ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fleetq-gate-'))
    cleanups.push(() => rm(dir, { recursive: true, force: true }))
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(new Date('2025-06-01T00:00:00Z'))

    let keyspace = await Keyspace.open({ location: dir })
    let gate = await TaskGate.create({ schemas, store: idempotencyStore(keyspace), logger, idempotencyWindowMs: 60_000 })
    const first = gate.inspect(keyed('order-1'), 'p1')
    await first.commit?.()
    vi.setSystemTime(new Date('2025-06-01T00:00:30Z'))
    await gate.inspect(keyed('order-2'), 'p1').commit?.()
    // Claimed but never committed (the publish was refused): not durable.
    gate.inspect(keyed('order-3'), 'p1')
    await gate.close()
    await keyspace.close()

    keyspace = await Keyspace.open({ location: dir })
    gate = await TaskGate.create({ schemas, store: idempotencyStore(keyspace), logger, idempotencyWindowMs: 60_000 })
    expect(gate.stats().idempotencyKeys).toBe(2)
    expect(gate.inspect(keyed('order-1'), 'p1')).toEqual({ action: 'duplicate', taskId: first.taskId })
    expect(gate.inspect(keyed('order-3'), 'p1').action).toBe('pass')
    await gate.close()
    await keyspace.close()

    // Past order-1's window, not order-2's: order-1 is dropped from the store at start.
    vi.setSystemTime(new Date('2025-06-01T00:01:10Z'))
    keyspace = await Keyspace.open({ location: dir })
    cleanups.push(() => keyspace.close())
    const store = idempotencyStore(keyspace)
    gate = await TaskGate.create({ schemas, store, logger, idempotencyWindowMs: 60_000 })
    cleanups.push(() => gate.close())
    expect(gate.stats().idempotencyKeys).toBe(1)
    const stored = (await store.load()).map(({ id }) => id)
    expect(stored).toEqual(['thumbnail/order-2'])
    expect(gate.inspect(keyed('order-1'), 'p1').action).toBe('pass')
    expect(gate.inspect(keyed('order-2'), 'p1').action).toBe('duplicate')
  })

  it('releases the claim when the key cannot be stored', async () => {
    const { store, keyspace } = await memoryStore()
    const gate = await createGate({}, store)
    await keyspace.close()
    const decision = gate.inspect(keyed('k'), 'p1')
    await expect(decision.commit?.()).rejects.toThrow()
    expect(gate.inspect(keyed('k'), 'p1').action).toBe('pass')
  })
})
