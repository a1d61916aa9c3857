// A worker process of the queue-depth curve (bench/curves-queue.ts): fleetq's
// createWorker or BullMQ's Worker with a no-op handler, as in bench:tasks,
// but it takes tasks only between the parent's 'start' and 'pause' (so the
// queue can be filled with no worker taking from it) and reports its count
// of completed tasks as it goes.
// argv[2]: JSON QueueWorkerConfig. IPC in: 'start', 'pause', 'stop'. Out: 'ready', 'started', 'paused', 'count', 'stopped'.
import { performance } from 'node:perf_hooks'

export interface QueueWorkerConfig {
  system: 'fleetq' | 'bullmq'
  /** mqtt://… for fleetq, redis://… for BullMQ. */
  endpoint: string
  /** BullMQ queue name; fleetq client id prefix. */
  name: string
  index: number
  concurrency: number
}

export type QueueWorkerIn = { kind: 'start' } | { kind: 'pause' } | { kind: 'stop' }
/** `count`: tasks completed so far and the wall time (ms since the epoch, sub-ms) of the latest completion. */
export type QueueWorkerOut = { kind: 'ready' } | { kind: 'started' } | { kind: 'paused' } | { kind: 'count', processed: number, lastAt: number } | { kind: 'stopped', processed: number }

/** How often a changed count is reported. */
const REPORT_MS = 25

const wallNow = (): number => performance.timeOrigin + performance.now()
const send = (message: QueueWorkerOut): Promise<void> => new Promise((resolve) => {
  if (process.send === undefined || !process.connected) resolve()
  else process.send(message, undefined, {}, () => resolve())
})

async function main (): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as QueueWorkerConfig
  let processed = 0
  let lastAt = 0
  const handler = async (): Promise<null> => {
    processed++
    lastAt = wallNow()
    return null
  }
  let start: () => Promise<void>
  let pause: () => Promise<void>
  let close: () => Promise<void>
  if (config.system === 'fleetq') {
    const { connect, createWorker } = await import('../client/index.js')
    const client = await connect(config.endpoint, { clientId: `${config.name}-worker-${config.index}` })
    // A closed worker leaves its group; the group keeps what is published meanwhile (docs/shared-subscriptions.md).
    let worker: Awaited<ReturnType<typeof createWorker>> | null = null
    start = async () => { worker = await createWorker(client, 'thumbnail', handler, { concurrency: config.concurrency }) }
    pause = async () => { await worker?.close(); worker = null }
    close = () => client.close()
  } else {
    const { Worker } = await import('bullmq')
    const { redisConnection } = await import('./bullmq-redis.js')
    // autorun false: the worker connects now and takes jobs only from run() on.
    const worker = new Worker(config.name, handler, { connection: redisConnection(config.endpoint), concurrency: config.concurrency, autorun: false })
    worker.on('error', (err) => process.stderr.write(`bullmq worker ${config.index}: ${err.message}\n`))
    await worker.waitUntilReady()
    let running = false
    start = () => {
      if (running) {
        worker.resume()
      } else {
        running = true
        worker.run().catch((err: unknown) => process.stderr.write(`bullmq worker ${config.index}: ${String(err)}\n`))
      }
      return Promise.resolve()
    }
    // pause() waits for the jobs in progress.
    pause = () => worker.pause()
    close = () => worker.close()
  }
  let reported = -1
  const timer = setInterval(() => {
    if (processed === reported) return
    reported = processed
    void send({ kind: 'count', processed, lastAt })
  }, REPORT_MS)
  process.on('message', (message: QueueWorkerIn) => {
    if (message.kind === 'start') {
      void start().then(() => send({ kind: 'started' }))
    } else if (message.kind === 'pause') {
      // The final count goes before 'paused': the parent reads it as the baseline.
      void pause().then(async () => {
        reported = processed
        await send({ kind: 'count', processed, lastAt })
        await send({ kind: 'paused' })
      })
    } else if (message.kind === 'stop') {
      clearInterval(timer)
      void close().finally(() => send({ kind: 'stopped', processed })).finally(() => process.exit(0))
    }
  })
  // The parent went away: nothing left to measure.
  process.once('disconnect', () => { void close().finally(() => process.exit(0)) })
  await send({ kind: 'ready' })
}

await main()
