import { afterEach, describe, expect, it } from 'vitest'
import { connect, createWorker, ErrorCodes, TaskValidationError, type Client, type Worker } from '../client/index.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { testSchemas } from './helpers/task-schemas.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

interface Thumb { imageUrl: string, width: number, height: number }
const thumb = (n: number): Thumb => ({ imageUrl: `https://example.com/bulk/${n}.png`, width: n + 1, height: 1 })

describe('client.submitMany', () => {
  let b: TestBroker | undefined
  const clients: Client[] = []
  const workers: Worker[] = []
  afterEach(async () => {
    await Promise.all(workers.splice(0).map((w) => w.close({ timeoutMs: 500 })))
    await Promise.all(clients.splice(0).map((c) => c.close()))
    await b?.close()
    b = undefined
  })

  async function client (): Promise<Client> {
    const c = await connect(b!.url, { schemas: await testSchemas(), reconnectPeriod: 100 })
    clients.push(c)
    return c
  }

  const enqueued = (): number | undefined => b!.broker.stats().sharedGroups.find((g) => g.group === 'thumbnail')?.counters.enqueued

  it('submits 2,000 tasks in one call: handles in order, each stored once, run once, every result() resolves', async () => {
    b = await startBroker()
    const runs = new Map<string, number>()
    workers.push(await createWorker(await client(), 'thumbnail', (p, ctx) => {
      runs.set(ctx.id, (runs.get(ctx.id) ?? 0) + 1)
      return p.width
    }, { concurrency: 8 }))
    const producer = await client()
    const payloads = Array.from({ length: 2000 }, (_, i) => thumb(i))
    const handles = await producer.submitMany('thumbnail', payloads)
    expect(handles).toHaveLength(2000)
    expect(new Set(handles.map((h) => h.id)).size).toBe(2000)
    // each stored once (the broker's journal holds a task from its PUBACK until it is in the group)
    await waitUntil(() => enqueued() === 2000, 'the 2,000 tasks in the group', 20_000, () => String(enqueued()))
    await expect(Promise.all(handles.map((h) => h.result()))).resolves.toEqual(payloads.map((p) => p.width))
    expect(runs.size).toBe(2000)
    expect([...runs.values()].every((n) => n === 1)).toBe(true)
  })

  it('all or nothing: one invalid payload throws TaskValidationError naming its index, and no task is sent', async () => {
    b = await startBroker()
    const producer = await client()
    const payloads: Thumb[] = Array.from({ length: 10 }, (_, i) => thumb(i))
    ;(payloads[7] as { width: unknown }).width = 'wide'
    const err = await producer.submitMany('thumbnail', payloads).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TaskValidationError)
    expect(err).toMatchObject({ code: ErrorCodes.PAYLOAD_INVALID, index: 7, taskType: 'thumbnail', issues: [expect.objectContaining({ path: '/width' })] })
    expect((err as Error).message).toMatch(/at index 7/)
    // A later task on the same connection is stored alone: nothing of the batch went out before it.
    await producer.submit('thumbnail', thumb(100))
    await waitUntil(() => enqueued() === 1, 'the single task stored')
    await expectNothingFor(100, () => enqueued() !== 1, 'a task of the refused batch')
  })

  it('shared options apply to every task; idempotencyKeys make a resubmitted batch run once; bad options are refused before sending', async () => {
    b = await startBroker()
    const runs: Array<{ id: string, maxAttempts: number }> = []
    workers.push(await createWorker(await client(), 'thumbnail', (p, ctx) => {
      runs.push({ id: ctx.id, maxAttempts: ctx.maxAttempts })
      return p.width
    }, { concurrency: 4 }))
    const producer = await client()
    const payloads = [thumb(1), thumb(2), thumb(3)]
    const keys = ['k1', 'k2', 'k3']
    const first = await producer.submitMany('thumbnail', payloads, { maxAttempts: 7, idempotencyKeys: keys })
    await expect(Promise.all(first.map((h) => h.result()))).resolves.toEqual([2, 3, 4])
    expect(runs.map((r) => r.maxAttempts)).toEqual([7, 7, 7])
    // the same batch again: the broker's gate drops each repeated key
    await producer.submitMany('thumbnail', payloads, { maxAttempts: 7, idempotencyKeys: keys })
    await expectNothingFor(300, () => runs.length > 3, 'a resubmitted task running again')

    await expect(producer.submitMany('thumbnail', payloads, { idempotencyKeys: ['only-one'] })).rejects.toMatchObject({ code: ErrorCodes.SUBMIT_OPTIONS_INVALID })
    await expect(producer.submitMany('thumbnail', payloads, { idempotencyKey: 'same-for-all' } as never)).rejects.toMatchObject({ code: ErrorCodes.SUBMIT_OPTIONS_INVALID })
    await expect(producer.submitMany('thumbnail', payloads, { maxAttempts: 0 })).rejects.toMatchObject({ code: ErrorCodes.SUBMIT_OPTIONS_INVALID })
    await expect(producer.submitMany('no-such-type', [{}])).rejects.toMatchObject({ code: ErrorCodes.UNKNOWN_TASK_TYPE })
    await expect(producer.submitMany('thumbnail', [])).resolves.toEqual([])
  })
})
