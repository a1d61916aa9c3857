// The queue-depth curve of bench/curves.ts: for N tasks, fleetq and BullMQ on
// Redis (no AOF) each get a fresh server and worker processes, warmed up with
// tasks going through; then, the workers paused, N tasks are enqueued
// (timed), the server's RSS is read with N waiting, and the workers resume at
// once and are timed draining the queue (bounded by --drain-seconds).
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { Queue } from 'bullmq'
import mqtt from 'mqtt'
import { buildEnvelope } from '../protocol/envelope.js'
import { startFleetq } from './brokers.js'
import { benchRuntime, nodeCommand } from './compiled.js'
import { IpcChild } from './ipc-child.js'
import { redisConnection, startRedis } from './bullmq-redis.js'
import type { CurvesOptions } from './curves-options.js'
import { firstLine } from './curves-messaging.js'
import type { QueueWorkerConfig, QueueWorkerIn, QueueWorkerOut } from './curves-queue-worker.js'
import { stamp, type Metric, type PointResult } from './curves-report.js'
import { readCpuSeconds, readRssBytes, RssSampler } from './stats.js'
import { thumbnailPayload } from './task-load.js'

export const depthMetrics: readonly Metric[] = [
  { key: 'enqueuePerSec', label: 'enqueue/s', digits: 0, ratio: true },
  { key: 'rssMb', label: 'RSS MB', digits: 1, ratio: true },
  { key: 'drainPerSec', label: 'drain tasks/s', digits: 0, ratio: true },
  { key: 'drainSeconds', label: 'drain s', digits: 1, ratio: false },
  { key: 'cpuUsPerTask', label: 'server CPU µs/task', digits: 0, ratio: true }
]

export type QueueSystem = 'fleetq' | 'bullmq'

const workerScript = new URL('./curves-queue-worker.ts', import.meta.url)

/** fleetq: publishes awaiting their PUBACK at once, as submitMany() (client/producer.ts SUBMIT_MANY_WINDOW). */
const FLEETQ_WINDOW = 256
/** BullMQ: jobs per addBulk() call, one call at a time. */
const BULLMQ_BATCH = 1_000
const READY_TIMEOUT_MS = 90_000
/** Tasks of the unmeasured warm-up, submitted while the workers take them. */
const WARMUP_TASKS = 2_000

interface Server { system: QueueSystem, endpoint: string, pid: number, close (): Promise<void> }

async function startServer (system: QueueSystem, depth: number): Promise<Server> {
  if (system === 'bullmq') return { system, ...await startRedis('none') }
  const target = await startFleetq('level', false, { serverArgs: ['--group-max-length', String(Math.max(100_000, 2 * depth))] })
  if (target.pid === null) throw new Error('the fleetq child reported no pid')
  return { system, endpoint: target.url, pid: target.pid, close: () => target.close() }
}

/**
 * Enqueues `count` thumbnail tasks with no worker taking them. fleetq: full
 * task envelopes (what submit() sends) published at QoS 1 from one mqtt.js
 * connection, 256 awaiting their PUBACK at once; the envelopes name no
 * producer, so no result is routed back (a device's fire-and-forget submit).
 * BullMQ: Queue.addBulk() of 1,000 jobs at a time, removeOnComplete as in
 * bench:tasks.
 */
async function enqueue (server: Server, name: string, count: number): Promise<number> {
  if (server.system === 'bullmq') {
    const queue = new Queue(name, { connection: redisConnection(server.endpoint), defaultJobOptions: { removeOnComplete: true } })
    try {
      await queue.waitUntilReady()
      const started = performance.now()
      for (let first = 0; first < count; first += BULLMQ_BATCH) {
        const n = Math.min(BULLMQ_BATCH, count - first)
        await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'thumbnail', data: thumbnailPayload(first + k) })))
      }
      return (performance.now() - started) / 1000
    } finally {
      await queue.close()
    }
  }
  const client = await mqtt.connectAsync(server.endpoint, { clientId: `${name}-producer`, clean: true, reconnectPeriod: 0 })
  try {
    const started = performance.now()
    let next = 0
    const lane = async (): Promise<void> => {
      while (next < count) {
        const i = next++
        const envelope = buildEnvelope({ type: 'thumbnail', payload: thumbnailPayload(i) })
        await client.publishAsync('tasks/thumbnail', JSON.stringify(envelope), { qos: 1 })
      }
    }
    await Promise.all(Array.from({ length: Math.min(FLEETQ_WINDOW, count) }, lane))
    return (performance.now() - started) / 1000
  } finally {
    await client.endAsync()
  }
}

/** A worker process of bench/curves-queue-worker.ts; its running counts update `processed` and `lastAt` instead of queueing. */
class QueueWorkerProcess extends IpcChild<QueueWorkerIn, QueueWorkerOut> {
  processed = 0
  lastAt = 0

  constructor (command: { execArgv: string[], file: string }, config: QueueWorkerConfig, onCount: () => void) {
    super(command, config, `queue worker ${config.index}`, (message) => {
      if (message.kind !== 'count') return false
      this.processed = message.processed
      this.lastAt = message.lastAt
      onCount()
      return true
    })
  }
}

const wallNow = (): number => performance.timeOrigin + performance.now()

export async function measureDepth (system: QueueSystem, depth: number, o: CurvesOptions, when: { at: string, loadAverage: number }): Promise<PointResult> {
  const name = `curves-${process.pid}-${Date.now().toString(36)}-${depth}`
  const workerCommand = await nodeCommand(workerScript, benchRuntime())
  const server = await startServer(system, depth)
  const workers: QueueWorkerProcess[] = []
  try {
    let target = WARMUP_TASKS
    let baseline = 0
    let drainedAt: number | null = null
    const processed = (): number => workers.reduce((s, w) => s + w.processed, 0) - baseline
    const onCount = (): void => {
      if (drainedAt === null && processed() >= target) drainedAt = Math.max(...workers.map((w) => w.lastAt))
    }
    for (let index = 0; index < o.workers; index++) {
      workers.push(new QueueWorkerProcess(workerCommand, { system, endpoint: server.endpoint, name, index, concurrency: o.concurrency }, onCount))
    }
    const all = async (message: QueueWorkerIn, reply: QueueWorkerOut['kind']): Promise<void> => {
      for (const w of workers) w.send(message)
      await Promise.all(workers.map((w) => w.next(reply, READY_TIMEOUT_MS)))
    }
    // Unmeasured: the workers start up (connect), and a warm-up goes
    // through with them taking tasks, so every process has compiled its hot
    // paths (and fleetq's group exists: it is made by the first worker's
    // subscription and keeps what is published while it has no member,
    // docs/shared-subscriptions.md). Then they pause.
    await Promise.all(workers.map((w) => w.next('ready', READY_TIMEOUT_MS)))
    await all({ kind: 'start' }, 'started')
    await enqueue(server, name, WARMUP_TASKS)
    const warmDeadline = wallNow() + READY_TIMEOUT_MS
    while (drainedAt === null && wallNow() < warmDeadline) await sleep(10)
    if (drainedAt === null) throw new Error(`the warm-up's ${WARMUP_TASKS} tasks were not done within ${READY_TIMEOUT_MS / 1000} s`)
    await all({ kind: 'pause' }, 'paused')
    baseline += processed()
    target = depth
    drainedAt = null

    const enqueueRss = new RssSampler(server.pid)
    const enqueueSeconds = await enqueue(server, name, depth)
    const enqueuePeak = enqueueRss.stop()
    const rssWaiting = readRssBytes(server.pid)

    const cpuBefore = readCpuSeconds(server.pid)
    const drainRss = new RssSampler(server.pid)
    const startedAt = wallNow()
    for (const w of workers) w.send({ kind: 'start' })
    // Nothing waiting: nothing to time.
    const deadline = depth === 0 ? startedAt : startedAt + o.drainSeconds * 1000
    while (drainedAt === null && wallNow() < deadline) await sleep(10)
    const endedAt = drainedAt ?? wallNow()
    const done = Math.min(depth, processed())
    const cpuAfter = readCpuSeconds(server.pid)
    const drainPeak = drainRss.stop()
    const seconds = (endedAt - startedAt) / 1000
    const notes: string[] = []
    if (drainedAt === null && depth > 0) notes.push(`${done.toLocaleString('en-US')} of ${depth.toLocaleString('en-US')} drained in ${o.drainSeconds} s`)
    return {
      curve: 'depth',
      point: depth,
      system,
      ...when,
      values: {
        enqueueSeconds,
        enqueuePerSec: depth === 0 ? null : depth / enqueueSeconds,
        rssMb: rssWaiting === null ? null : rssWaiting / 2 ** 20,
        enqueuePeakRssMb: enqueuePeak === null ? null : enqueuePeak / 2 ** 20,
        drainPeakRssMb: drainPeak === null ? null : drainPeak / 2 ** 20,
        processed: done,
        drainPerSec: depth > 0 && seconds > 0 ? done / seconds : null,
        drainSeconds: drainedAt === null || depth === 0 ? null : seconds,
        cpuUsPerTask: cpuBefore === null || cpuAfter === null || done === 0 ? null : (cpuAfter - cpuBefore) * 1e6 / done
      },
      // Not drained within --drain-seconds is a figure, not a failure.
      notes,
      failed: false
    }
  } finally {
    for (const w of workers) w.send({ kind: 'stop' })
    await Promise.allSettled(workers.map((w) => w.next('stopped', 10_000)))
    await Promise.allSettled(workers.map((w) => w.kill()))
    await server.close()
  }
}

/** Every point on fleetq and on BullMQ, the order flipping per point. */
export async function runDepthCurve (points: readonly number[], o: CurvesOptions, progress: (line: string) => void): Promise<PointResult[]> {
  const results: PointResult[] = []
  const systems: QueueSystem[] = ['fleetq', 'bullmq']
  for (const [index, depth] of points.entries()) {
    for (const system of index % 2 === 0 ? systems : [...systems].reverse()) {
      const when = stamp()
      try {
        const result = await measureDepth(system, depth, o, when)
        results.push(result)
        const v = result.values
        progress(`  depth ${depth} ${system}: enqueue ${Math.round(v.enqueuePerSec ?? 0)}/s, RSS ${v.rssMb?.toFixed(1) ?? '-'} MB, drain ${Math.round(v.drainPerSec ?? 0)} tasks/s${result.notes.length > 0 ? ` (${result.notes.join(', ')})` : ''}`)
      } catch (err) {
        results.push({ curve: 'depth', point: depth, system, ...when, values: {}, notes: [firstLine(err)], failed: true })
        progress(`  depth ${depth} ${system}: failed: ${firstLine(err)}`)
      }
    }
  }
  return results
}
