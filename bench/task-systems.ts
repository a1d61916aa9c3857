// The systems `npm run bench:tasks` can run: a server process, a producer
// script and a worker script each. Every system runs the same load
// (bench/task-load.ts) with the same shape.
import { fileURLToPath } from 'node:url'
import { startFleetq } from './brokers.js'
import { startRedis } from './bullmq-redis.js'

/** A broker or Redis the benchmark started; its pid is read from /proc for CPU and RSS. */
export interface TaskServer {
  endpoint: string
  pid: number
  close (): Promise<void>
}

export interface TaskSystem {
  name: string
  /** fleetq's submitMany() or BullMQ's addBulk() in batches, instead of one call per task. */
  bulk: boolean
  start (): Promise<TaskServer>
  producerScript: string
  workerScript: string
}

const script = (name: string): string => fileURLToPath(new URL(name, import.meta.url))

async function startFleetqServer (): Promise<TaskServer> {
  // bench/fleetq-server.ts in its own process, LevelDB in a fresh temporary directory.
  // FLEETQ_BENCH_CPU_PROF=<dir>: the broker runs under `node --cpu-prof` (read it with bench/cpu-profile-top.ts).
  const profileDir = process.env['FLEETQ_BENCH_CPU_PROF']
  const target = await startFleetq('level', false, profileDir === undefined || profileDir === '' ? {} : { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] })
  if (target.pid === null) throw new Error('the fleetq child reported no pid')
  return { endpoint: target.url, pid: target.pid, close: () => target.close() }
}

const fleetq = { start: startFleetqServer, producerScript: script('./task-producer-fleetq.ts'), workerScript: script('./task-worker-fleetq.ts') }
const bullmq = { producerScript: script('./bullmq-producer.ts'), workerScript: script('./bullmq-worker.ts') }

export const taskSystems: readonly TaskSystem[] = [
  { name: 'fleetq', bulk: false, ...fleetq },
  { name: 'bullmq', bulk: false, start: () => startRedis('none'), ...bullmq },
  { name: 'bullmq-aof', bulk: false, start: () => startRedis('aof'), ...bullmq },
  { name: 'fleetq-bulk', bulk: true, ...fleetq },
  { name: 'bullmq-bulk', bulk: true, start: () => startRedis('none'), ...bullmq },
  { name: 'bullmq-aof-bulk', bulk: true, start: () => startRedis('aof'), ...bullmq }
]

export const taskSystemNames = taskSystems.map((s) => s.name)

/** The fleetq run a system's figures are compared with: the one submitting the same way. */
export function fleetqCounterpart (system: string): string {
  return system.endsWith('-bulk') ? 'fleetq-bulk' : 'fleetq'
}
