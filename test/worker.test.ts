import { afterEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import {
  ErrorCodes, computeBackoff, connect, createWorker, TaskFailedError, TaskTimeoutError, UnknownTaskTypeError, UnrecoverableError,
  type Client, type DeadLetter, type TaskEnvelope, type Worker
} from '../client/index.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { testSchemas } from './helpers/task-schemas.js'
import { connectCollecting, type Received } from './helpers/connect.js'
import { RawClient } from './helpers/raw-client.js'
import { deferred } from './helpers/deferred.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

interface Thumb { imageUrl: string, width: number, height: number }
const thumb = (n: number, name = 'img'): Thumb => ({ imageUrl: `https://example.com/${name}/${n}.png`, width: (n % 4096) + 1, height: 1 })

describe('computeBackoff', () => {
  it('fixed: the same delay for every attempt', () => {
    expect([1, 2, 5].map((a) => computeBackoff({ type: 'fixed', delayMs: 300 }, a))).toEqual([300, 300, 300])
  })
  it('exponential: doubles per attempt, capped by maxDelayMs', () => {
    const b = { type: 'exponential', delayMs: 100, maxDelayMs: 1000 } as const
    expect([1, 2, 3, 4, 5, 10].map((a) => computeBackoff(b, a))).toEqual([100, 200, 400, 800, 1000, 1000])
  })
  it('jitter takes up to that fraction off, never adds', () => {
    const b = { type: 'exponential', delayMs: 1000, maxDelayMs: 60_000, jitter: 0.2 } as const
    expect(computeBackoff(b, 1, () => 0)).toBe(1000)
    expect(computeBackoff(b, 1, () => 0.5)).toBe(900)
    expect(computeBackoff(b, 1, () => 0.999999)).toBe(800)
    expect(computeBackoff(b, 20, () => 0)).toBe(60_000)
    for (let i = 0; i < 100; i++) {
      const d = computeBackoff(b, 3)
      expect(d).toBeGreaterThanOrEqual(3200)
      expect(d).toBeLessThanOrEqual(4000)
    }
  })
})

describe('Worker', () => {
  let b: TestBroker | undefined
  const clients: Client[] = []
  const raws: MqttClient[] = []
  const rawClients: RawClient[] = []
  const workers: Worker[] = []
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close({ timeoutMs: 500 })))
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await Promise.all(raws.splice(0).map((c) => c.endAsync(true)))
    for (const r of rawClients.splice(0)) r.destroy()
    await b?.close()
    b = undefined
  })

  async function client (options: Parameters<typeof connect>[1] = {}): Promise<Client> {
    const c = await connect(b!.url, { schemas: await testSchemas(), reconnectPeriod: 100, ...options })
    clients.push(c)
    return c
  }

  async function worker (...args: Parameters<typeof createWorker<'thumbnail'>> extends [unknown, ...infer Rest] ? Rest : never): Promise<Worker> {
    const w = await createWorker(await client(), ...args)
    workers.push(w)
    return w
  }

  async function deadLetters (type = 'thumbnail'): Promise<Received[]> {
    const { client: raw, received } = await connectCollecting(b!.url, {})
    raws.push(raw)
    // '#' does not match $ topics at the first level: subscribe by name.
    await raw.subscribeAsync(`$fleetq/dead/${type}`, { qos: 1 })
    return received
  }

  it('round trip: 1,000 tasks across 3 workers, each executed once, every result() resolves', async () => {
    b = await startBroker()
    const runs = new Map<string, number>()
    const perWorker = [0, 0, 0]
    for (let w = 0; w < 3; w++) {
      await worker('thumbnail', (p, ctx) => {
        runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1)
        perWorker[w]!++
        return { w: p.width * 2 }
      }, { concurrency: 4 })
    }
    const producer = await client()
    const handles = await Promise.all(Array.from({ length: 1000 }, (_, i) => producer.submit('thumbnail', thumb(i))))
    const results = await Promise.all(handles.map((h) => h.result<{ w: number }>()))
    expect(results.map((r) => r.w)).toEqual(Array.from({ length: 1000 }, (_, i) => ((i % 4096) + 1) * 2))
    expect(runs.size).toBe(1000)
    expect([...runs.values()].every((n) => n === 1)).toBe(true)
    // all three took part
    for (const n of perWorker) expect(n).toBeGreaterThan(100)
    // A task's PUBACK follows its result's: the last ones may still be on the wire.
    const group = (): { inflight: number } | undefined => b!.broker.stats().sharedGroups.find((g) => g.group === 'thumbnail')
    await waitUntil(() => group()?.inflight === 0, 'the last PUBACKs', 5000, () => JSON.stringify(group()))
    expect(group()).toMatchObject({ depth: 0, inflight: 0, counters: { redelivered: 0 } })
  })

  it('retries: failing twice then succeeding completes on attempt 3 after the backoff delays', async () => {
    b = await startBroker()
    const starts: number[] = []
    const attempts: number[] = []
    const previous: string[][] = []
    const w = await worker('thumbnail', (_p, ctx) => {
      starts.push(performance.now())
      attempts.push(ctx.attempt)
      previous.push(ctx.envelope.previousErrors ?? [])
      if (ctx.attempt < 3) throw new Error(`boom ${ctx.attempt}`)
      return 'third time lucky'
    })
    const retrying: Array<{ nextAttempt: number, delayMs: number }> = []
    const failed: boolean[] = []
    w.on('retrying', (e) => retrying.push({ nextAttempt: e.nextAttempt, delayMs: e.delayMs }))
    w.on('failed', (e) => failed.push(e.willRetry))
    const producer = await client()
    const backoff = { type: 'exponential', delayMs: 50, maxDelayMs: 1000, jitter: 0 } as const
    // with a key: the broker's gate must not take the retries for duplicate submissions
    const handle = await producer.submit('thumbnail', thumb(1), { backoff, idempotencyKey: 'retry-me' })
    await expect(handle.result()).resolves.toBe('third time lucky')
    expect(attempts).toEqual([1, 2, 3])
    expect(failed).toEqual([true, true])
    expect(retrying).toEqual([{ nextAttempt: 2, delayMs: 50 }, { nextAttempt: 3, delayMs: 100 }])
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(computeBackoff(backoff, 1) - 1)
    expect(starts[2]! - starts[1]!).toBeGreaterThanOrEqual(computeBackoff(backoff, 2) - 1)
    expect(previous).toEqual([[], ['boom 1'], ['boom 1', 'boom 2']])
    // Both retries waited in the broker ($delayed), not in the worker. The
    // broker counts a delayed message fired once its store delete is written,
    // which can come after the result reached the producer.
    await waitUntil(() => b!.broker.stats().delayed.fired === 2, () => `the second retry counted as fired: ${JSON.stringify(b!.broker.stats().delayed)}`)
    expect(b.broker.stats().delayed).toMatchObject({ accepted: 2, fired: 2, pending: 0 })
  })

  it('an always-failing task is dead-lettered after maxAttempts and result() rejects with TaskFailedError', async () => {
    b = await startBroker()
    const dead = await deadLetters()
    let runs = 0
    const w = await worker('thumbnail', () => { runs++; throw new Error('always broken') })
    const deadEvents: DeadLetter[] = []
    w.on('dead-lettered', (d) => deadEvents.push(d))
    const producer = await client()
    const handle = await producer.submit('thumbnail', thumb(2), { maxAttempts: 3, backoff: { type: 'fixed', delayMs: 5 } })
    const err = await handle.result().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TaskFailedError)
    expect(err).toMatchObject({ code: ErrorCodes.TASK_FAILED, taskId: handle.id, attempts: 3, message: 'always broken' })
    expect(runs).toBe(3)
    await waitUntil(() => dead.length === 1, 'the dead letter')
    const letter = JSON.parse(dead[0]!.payload) as DeadLetter
    expect(letter).toMatchObject({ reason: 'failed', taskType: 'thumbnail', error: 'always broken', attempts: 3 })
    expect((letter.envelope as TaskEnvelope)).toMatchObject({ id: handle.id, attempt: 3, previousErrors: ['always broken', 'always broken'] })
    expect(Date.parse(letter.at)).not.toBeNaN()
    expect(deadEvents).toHaveLength(1)
    await expectNothingFor(200, () => runs > 3 || dead.length > 1, 'another attempt')
  })

  it('UnrecoverableError dead-letters at once', async () => {
    b = await startBroker()
    const dead = await deadLetters()
    let runs = 0
    await worker('thumbnail', () => { runs++; throw new UnrecoverableError('image is corrupt') })
    const producer = await client()
    const handle = await producer.submit('thumbnail', thumb(3), { maxAttempts: 5 })
    await expect(handle.result()).rejects.toMatchObject({ attempts: 1, message: 'image is corrupt' })
    await waitUntil(() => dead.length === 1, 'the dead letter')
    expect(JSON.parse(dead[0]!.payload)).toMatchObject({ reason: 'unrecoverable', attempts: 1, error: 'image is corrupt' })
    expect(runs).toBe(1)
  })

  it('timeout aborts the handler\'s signal and counts as a failed attempt; the last one is dead-lettered as timeout', async () => {
    b = await startBroker()
    const dead = await deadLetters()
    const reasons: unknown[] = []
    let attempts = 0
    await worker('thumbnail', (_p, ctx) => {
      attempts++
      // never finishes on its own: only the abort ends it
      return new Promise((_resolve, reject) => {
        ctx.signal.addEventListener('abort', () => { reasons.push(ctx.signal.reason); reject(ctx.signal.reason as Error) })
      })
    })
    const producer = await client()
    const started = Date.now()
    const handle = await producer.submit('thumbnail', thumb(4), { timeout: 100, maxAttempts: 2, backoff: { type: 'fixed', delayMs: 1 } })
    const err = await handle.result().catch((e: unknown) => e)
    expect(Date.now() - started).toBeGreaterThanOrEqual(200)
    expect(err).toMatchObject({ attempts: 2, message: expect.stringMatching(/timed out after 100 ms/) })
    expect(attempts).toBe(2)
    expect(reasons).toHaveLength(2)
    expect(reasons[0]).toBeInstanceOf(TaskTimeoutError)
    expect(reasons[0]).toMatchObject({ code: ErrorCodes.TASK_TIMEOUT, timeoutMs: 100 })
    await waitUntil(() => dead.length === 1, 'the dead letter')
    expect(JSON.parse(dead[0]!.payload)).toMatchObject({ reason: 'timeout', attempts: 2 })
  })

  it('timeouts share one timer: a short one behind a long one still fires on time, and the long one stays running', async () => {
    b = await startBroker()
    const aborted: number[] = []
    const w = await worker('thumbnail', (p, ctx) => new Promise((_resolve, reject) => {
      ctx.signal.addEventListener('abort', () => { aborted.push(p.width); reject(ctx.signal.reason as Error) })
    }), { concurrency: 2 })
    const producer = await client()
    // The long one arms the worker's timer first; the short one must arm it earlier.
    const long = await producer.submit('thumbnail', thumb(1), { timeout: 60_000, maxAttempts: 1 })
    const started = Date.now()
    const short = await producer.submit('thumbnail', thumb(2), { timeout: 150, maxAttempts: 1 })
    const err = await short.result().catch((e: unknown) => e)
    expect(err).toMatchObject({ message: expect.stringMatching(/timed out after 150 ms/) })
    expect(Date.now() - started).toBeLessThan(10_000)
    // width is n + 1: only the short one (n = 2) was aborted
    expect(aborted).toEqual([3])
    expect(w.running).toBe(1)
    expect(long.id).toEqual(expect.any(String))
  })

  it('a task with an invalid payload never reaches the handler and is dead-lettered as validation', async () => {
    b = await startBroker()
    const dead = await deadLetters()
    let runs = 0
    await worker('thumbnail', () => { runs++ })
    const { client: raw } = await connectCollecting(b.url, {})
    raws.push(raw)
    // past submit()'s check: a hand-made envelope with a bad payload
    const envelope = {
      id: 'bad-1', type: 'thumbnail', payload: { imageUrl: 'x', width: -1 },
      attempt: 1, maxAttempts: 3, createdAt: new Date().toISOString(), timeoutMs: 1000
    }
    await raw.publishAsync('tasks/thumbnail', JSON.stringify(envelope), { qos: 1 })
    await waitUntil(() => dead.length >= 1, 'the dead letter')
    expect(JSON.parse(dead[0]!.payload)).toMatchObject({ reason: 'validation' })
    await expectNothingFor(200, () => runs > 0, 'the handler running an invalid task')
  })

  it('a task delivered more than maxDeliveries times without finishing is dead-lettered as poison', async () => {
    b = await startBroker()
    const dead = await deadLetters()
    // a member that takes the task and vanishes without acknowledging it
    const taker = await RawClient.connect(b.port, 'taker')
    rawClients.push(taker)
    await taker.subscribe('$share/thumbnail/tasks/thumbnail', 1)
    const producer = await client()
    const handle = await producer.submit('thumbnail', thumb(5))
    await waitUntil(() => taker.received.length === 1, 'the taker to hold the task')
    let runs = 0
    await worker('thumbnail', () => { runs++ }, { maxDeliveries: 1 })
    taker.destroy()
    await expect(handle.result()).rejects.toMatchObject({ message: 'delivered 2 times without completing' })
    await waitUntil(() => dead.length === 1, 'the dead letter')
    expect(JSON.parse(dead[0]!.payload)).toMatchObject({ reason: 'failed', error: 'delivered 2 times without completing' })
    expect(runs).toBe(0)
  })

  it('graceful close: finishes the running task, takes no new one', async () => {
    b = await startBroker()
    const release = deferred()
    const started: string[] = []
    const first = await worker('thumbnail', async (p) => {
      started.push(p.imageUrl)
      await release.promise
      return 'first'
    })
    const producer = await client()
    const a = await producer.submit('thumbnail', thumb(1, 'a'))
    await waitUntil(() => started.length === 1, 'task a to start')
    expect(first.running).toBe(1)
    const closing = first.close({ timeoutMs: 10_000 })
    const later = await producer.submit('thumbnail', thumb(2, 'b'))
    release.resolve()
    await closing
    await expect(a.result()).resolves.toBe('first')
    expect(first.running).toBe(0)

    const secondRuns: string[] = []
    await worker('thumbnail', (p) => { secondRuns.push(p.imageUrl); return 'second' })
    await expect(later.result()).resolves.toBe('second')
    expect(started).toEqual([thumb(1, 'a').imageUrl])
    expect(secondRuns).toEqual([thumb(2, 'b').imageUrl])
    expect(first.close()).toBe(closing) // idempotent
  })

  it('close past its deadline gives the task up: it is redelivered to another worker', async () => {
    b = await startBroker()
    const aborted: unknown[] = []
    const stuck = await worker('thumbnail', (_p, ctx) => new Promise((_resolve, reject) => {
      ctx.signal.addEventListener('abort', () => { aborted.push(ctx.signal.reason); reject(ctx.signal.reason as Error) })
    }))
    const producer = await client()
    const h = await producer.submit('thumbnail', thumb(6))
    await waitUntil(() => stuck.running === 1, 'the task to start')
    await stuck.close({ timeoutMs: 50 })
    expect(aborted).toHaveLength(1)
    const deliveries: number[] = []
    await worker('thumbnail', (_p, ctx) => { deliveries.push(ctx.deliveryCount); return 'rescued' })
    await expect(h.result()).resolves.toBe('rescued')
    expect(deliveries).toEqual([2])
  })

  it('concurrency N runs up to N tasks at once on one worker', async () => {
    b = await startBroker()
    const release = deferred()
    let running = 0
    let peak = 0
    const w = await worker('thumbnail', async () => {
      running++
      peak = Math.max(peak, running)
      await release.promise
      running--
    }, { concurrency: 4 })
    const producer = await client()
    const handles = await Promise.all(Array.from({ length: 8 }, (_, i) => producer.submit('thumbnail', thumb(i))))
    await waitUntil(() => running === 4, '4 tasks running')
    expect(w.running).toBe(4)
    await expectNothingFor(100, () => running > 4, 'a fifth task at once')
    release.resolve()
    await Promise.all(handles.map((h) => h.result()))
    expect(peak).toBe(4)
  })

  it('a task running longer than 1.5 keepalives keeps its connection: acknowledged once, never redelivered', async () => {
    b = await startBroker()
    const deliveries: number[] = []
    // keepalive 2 s: the broker drops a silent connection after 3 s; the task
    // takes 4 s, during which the worker's connection must keep pinging
    const w = await createWorker(await client({ keepalive: 2 }), 'thumbnail', async (_p, ctx) => {
      deliveries.push(ctx.deliveryCount)
      await new Promise((resolve) => setTimeout(resolve, 4000))
      return 'slow'
    })
    workers.push(w)
    const producer = await client()
    const h = await producer.submit('thumbnail', thumb(8))
    await expect(h.result()).resolves.toBe('slow')
    expect(deliveries).toEqual([1])
    // The PUBACK follows the result's: it may still be on the wire.
    const group = (): { inflight: number } | undefined => b!.broker.stats().sharedGroups.find((g) => g.group === 'thumbnail')
    await waitUntil(() => group()?.inflight === 0, 'the PUBACK', 5000, () => JSON.stringify(group()))
    expect(group()).toMatchObject({ inflight: 0, counters: { acked: 1, redelivered: 0 } })
  })

  it('refuses an unknown task type and bad options at start-up', async () => {
    b = await startBroker()
    const c = await client()
    await expect(createWorker(c, 'no-such-type', () => undefined)).rejects.toBeInstanceOf(UnknownTaskTypeError)
    await expect(createWorker(c, 'thumbnail', () => undefined, { concurrency: 0 })).rejects.toMatchObject({ code: ErrorCodes.WORKER_OPTIONS_INVALID, message: expect.stringMatching(/concurrency/) })
    await expect(createWorker(c, 'tasks/x', () => undefined)).rejects.toMatchObject({ code: ErrorCodes.WORKER_OPTIONS_INVALID, message: expect.stringMatching(/one topic level/) })
  })

  it('idempotency key: two submissions with the same key run once', async () => {
    b = await startBroker()
    const runs: string[] = []
    await worker('thumbnail', (_p, ctx) => { runs.push(ctx.id); return 'ok' })
    const producer = await client()
    const first = await producer.submit('thumbnail', thumb(7), { idempotencyKey: 'order-42' })
    await producer.submit('thumbnail', thumb(7), { idempotencyKey: 'order-42' })
    await expect(first.result()).resolves.toBe('ok')
    await expectNothingFor(300, () => runs.length > 1, 'a second execution of the same idempotency key')
    expect(runs).toEqual([first.id])
  })

  it('client.close() closes its workers first: the running task\'s result is published and acknowledged, nothing goes out on a closed connection', async () => {
    b = await startBroker()
    const release = deferred()
    const started: string[] = []
    const completed: string[] = []
    const errors: Error[] = []
    const workerClient = await client()
    workerClient.on('error', (err) => errors.push(err))
    const w = await createWorker(workerClient, 'thumbnail', async (_p, ctx) => {
      started.push(ctx.id)
      await release.promise
      return 'finished while closing'
    })
    w.on('error', (err) => errors.push(err))
    w.on('completed', (e) => completed.push(e.envelope.id))
    const producer = await client()
    const h = await producer.submit('thumbnail', thumb(8))
    await waitUntil(() => started.length === 1, 'the task to start')

    const closing = workerClient.close()
    expect(w.closed).toBe(false)
    release.resolve()
    await closing
    expect(w.closed).toBe(true)
    expect(w.running).toBe(0)
    // the result went out on the worker client's connection before it closed
    await expect(h.result()).resolves.toBe('finished while closing')
    expect(completed).toEqual([h.id])
    expect(errors).toEqual([])
    // acknowledged, not handed back to the queue
    const group = (): { depth: number, inflight: number } | undefined => b!.broker.stats().sharedGroups.find((g) => g.group === 'thumbnail')
    await waitUntil(() => group()?.inflight === 0, 'the task acknowledged or taken back')
    expect(group()).toMatchObject({ depth: 0, inflight: 0 })
    expect(started).toEqual([h.id])
    // a closed client makes no new worker
    await expect(createWorker(workerClient, 'thumbnail', () => 'late')).rejects.toMatchObject({ code: ErrorCodes.CLIENT_CLOSED })
  })
})
