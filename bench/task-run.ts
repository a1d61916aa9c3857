// One measured run of one system: start its server, its worker processes and
// its producer process, then read every process's CPU time from /proc around
// the producer's measured run and sample the server's RSS during it.
import { loadavg } from 'node:os'
import { pathToFileURL } from 'node:url'
import { benchRuntime, nodeCommand } from './compiled.js'
import { IpcChild } from './ipc-child.js'
import { readCpuSeconds, RssSampler } from './stats.js'
import type { ChildMessage, LoadPlan, ParentMessage, ProducerConfig, ProducerReport, WorkerConfig } from './task-ipc.js'
import type { TaskSystem } from './task-systems.js'

export interface RunShape {
  plan: LoadPlan
  workers: number
  concurrency: number
  warmup: number
}

export interface TaskRunResult {
  system: string
  round: number
  /** How the producer submitted: `submit`, `add`, or the bulk call and its batch size. */
  submitCall: string
  tasks: number
  completed: number
  failed: number
  /** Tasks the workers' handlers ran during the whole run, warm-up included. */
  processed: number
  tasksPerSec: number
  /** Submits acknowledged per second: above tasks/s, a backlog built up. */
  submitsPerSec: number
  p50Ms: number | null
  p99Ms: number | null
  maxMs: number | null
  /** CPU time (user + system) per completed task during the measured run, µs; null when unreadable. */
  serverCpuUs: number | null
  workerCpuUs: number | null
  producerCpuUs: number | null
  /** Peak RSS of the server process, and of the largest worker process, MiB. */
  serverRssMb: number | null
  workerRssMb: number | null
  producerLoopDelayMaxMs: number
  loadAverage: number
  error: string | null
}

/** Bounds on the phases around the measured run. */
const READY_TIMEOUT_MS = 90_000
const STOP_TIMEOUT_MS = 20_000

export async function runTaskSystem (system: TaskSystem, shape: RunShape, round: number): Promise<TaskRunResult> {
  const plan = { ...shape.plan, batch: system.bulk ? shape.plan.batch : 1 }
  const name = `bench-${process.pid}-${round}-${system.name}`
  const runtime = benchRuntime()
  const [workerCommand, producerCommand] = await Promise.all([nodeCommand(pathToFileURL(system.workerScript), runtime), nodeCommand(pathToFileURL(system.producerScript), runtime)])
  const server = await system.start()
  const children: Array<IpcChild<ParentMessage, ChildMessage>> = []
  try {
    for (let index = 0; index < shape.workers; index++) {
      const config: WorkerConfig = { endpoint: server.endpoint, name, index, concurrency: shape.concurrency }
      children.push(new IpcChild<ParentMessage, ChildMessage>(workerCommand, config, `worker ${index}`))
    }
    const workers = [...children]
    await Promise.all(workers.map((w) => w.next('ready', READY_TIMEOUT_MS)))
    const producerConfig: ProducerConfig = { endpoint: server.endpoint, name, plan, warmup: shape.warmup }
    const producer = new IpcChild<ParentMessage, ChildMessage>(producerCommand, producerConfig, 'producer')
    children.push(producer)
    await producer.next('ready', READY_TIMEOUT_MS)

    const pids = { server: [server.pid], workers: workers.map((w) => w.pid), producer: [producer.pid] }
    const cpuBefore = cpuOf(pids)
    const serverRss = new RssSampler(server.pid)
    const workerRss = workers.map((w) => new RssSampler(w.pid))
    const loadAverage = loadavg()[0] ?? 0
    producer.send({ kind: 'start' })
    const report = await producer.next('report', plan.timeoutMs + READY_TIMEOUT_MS) as ProducerReport
    const cpuAfter = cpuOf(pids)
    const serverRssBytes = serverRss.stop()
    const workerRssBytes = workerRss.map((s) => s.stop() ?? 0)

    for (const w of workers) w.send({ kind: 'stop' })
    const stopped = await Promise.allSettled(workers.map((w) => w.next('stopped', STOP_TIMEOUT_MS)))
    const processed = stopped.reduce((sum, s) => sum + (s.status === 'fulfilled' && s.value.kind === 'stopped' ? s.value.processed : 0), 0)

    const perTask = (key: keyof typeof pids): number | null => {
      const before = cpuBefore[key]
      const after = cpuAfter[key]
      return before === null || after === null || report.completed === 0 ? null : Math.round((after - before) * 1e6 / report.completed)
    }
    const mb = (bytes: number | null): number | null => (bytes === null || bytes === 0 ? null : Math.round(bytes / 2 ** 20 * 10) / 10)
    return {
      system: system.name,
      round,
      submitCall: submitCall(system, plan.batch),
      tasks: plan.tasks,
      completed: report.completed,
      failed: report.failed,
      processed,
      tasksPerSec: report.seconds > 0 ? Math.round(report.completed / report.seconds) : 0,
      submitsPerSec: report.submitSeconds > 0 ? Math.round(report.submitted / report.submitSeconds) : 0,
      p50Ms: report.p50Ms,
      p99Ms: report.p99Ms,
      maxMs: report.maxMs,
      serverCpuUs: perTask('server'),
      workerCpuUs: perTask('workers'),
      producerCpuUs: perTask('producer'),
      serverRssMb: mb(serverRssBytes),
      workerRssMb: mb(Math.max(0, ...workerRssBytes)),
      producerLoopDelayMaxMs: report.loopDelayMaxMs,
      loadAverage,
      error: report.error
    }
  } catch (err) {
    const stderr = children.map((c) => c.stderrTail()).filter((s) => s !== '').join('\n')
    throw new Error(`${system.name}: ${(err as Error).message}${stderr === '' ? '' : `\n${stderr}`}`, { cause: err })
  } finally {
    await Promise.allSettled(children.map((c) => c.kill()))
    await server.close()
  }
}

function submitCall (system: TaskSystem, batch: number): string {
  const fleetq = system.name.startsWith('fleetq')
  if (!system.bulk) return fleetq ? 'submit' : 'add'
  return `${fleetq ? 'submitMany' : 'addBulk'} ×${batch}`
}

/** Summed CPU seconds of each group of processes; null if any could not be read. */
function cpuOf<K extends string> (groups: Record<K, number[]>): Record<K, number | null> {
  const out = {} as Record<K, number | null>
  for (const key of Object.keys(groups) as K[]) {
    let sum: number | null = 0
    for (const pid of groups[key]) {
      const seconds = readCpuSeconds(pid)
      sum = seconds === null || sum === null ? null : sum + seconds
    }
    out[key] = sum
  }
  return out
}

