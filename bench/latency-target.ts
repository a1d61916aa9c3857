// fleetq for the latency bench: bench/latency-stalls-server.ts in a child
// process (the same broker and limits as bench/fleetq-server.ts), which counts
// every event-loop stall exactly and says, for each, whether fleetq's main
// thread was running or waiting for a CPU. Also the run-queue wait of any
// process's threads (Linux schedstat), so a busy machine shows in the table
// for Mosquitto as for fleetq.
import { readdirSync, readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { benchRuntime, nodeCommand } from './compiled.js'
import type { BenchTarget } from './brokers.js'
import { spawnBrokerChild } from './child.js'

/** One late turn of the broker's 1 ms timer (bench/latency-stalls-server.ts). */
export interface Stall {
  /** performance.now() of the broker when the turn was due, ms. */
  atMs: number
  lateMs: number
  /** The main thread's time on a CPU between the two turns, ms. */
  runMs: number
  /** The main thread's time runnable but waiting for a CPU, ms: the machine, not fleetq. */
  waitMs: number
}

export interface StallReport {
  /** Turns of the 1 ms timer since the reset. */
  turns: number
  stalls: Stall[]
  gcs: Array<{ atMs: number, ms: number, kind: string }>
  heapUsed: number
  heapTotal: number
  rss: number
  /** LevelDB batches since the reset: cumulative counts by upper bound (s); the last, null here (JSON's Infinity), is all. */
  writes: Array<{ le: number | null, count: number }>
  /** With --heap-sampling: the call paths that allocated the most. */
  allocations: Array<{ mb: number, stack: string }>
}

export interface StallTarget extends BenchTarget {
  pid: number
  /** Forgets what was recorded so far. */
  reset (): Promise<void>
  /** What was recorded since the last reset. */
  report (): Promise<StallReport>
  /** Lines on the broker's stdout that are not its answers (`--trace-gc` and the like), since start. */
  traced: string[]
}

export interface StallTargetOptions {
  persistence?: 'level' | 'memory'
  /** Late by more than this counts as a stall (default 5). */
  stallMs?: number
  /** Extra flags for node (`--cpu-prof …`, `--trace-gc`, `--max-semi-space-size=…`). */
  nodeArgs?: string[]
  sysIntervalSeconds?: number
  heapSampling?: boolean
}

const server = new URL('./latency-stalls-server.ts', import.meta.url)

export async function startStallTarget (o: StallTargetOptions = {}): Promise<StallTarget> {
  const nodeArgs = o.nodeArgs ?? []
  const { execArgv, file } = await nodeCommand(server, benchRuntime(nodeArgs))
  const child = spawnBrokerChild(process.execPath, [...nodeArgs, ...execArgv, file,
    '--persistence', o.persistence ?? 'level', '--stall-ms', String(o.stallMs ?? 5),
    ...(o.sysIntervalSeconds === undefined ? [] : ['--sys-interval', String(o.sysIntervalSeconds)]),
    ...(o.heapSampling === true ? ['--heap-sampling'] : [])])
  const lines = createInterface({ input: child.child.stdout! })
  const iterator = lines[Symbol.asyncIterator]()
  const traced: string[] = []
  // Our answers are JSON objects, one a line; anything else is a node flag's tracing.
  const next = async (): Promise<string> => {
    for (;;) {
      const line = await iterator.next()
      if (line.done === true) throw new Error(`fleetq closed stdout:\n${child.stderr()}`)
      if (line.value.startsWith('{')) return line.value
      traced.push(line.value)
    }
  }
  const ask = async (command: string): Promise<string> => {
    child.child.stdin!.write(command + '\n')
    return await next()
  }
  try {
    const ready = JSON.parse(await Promise.race([next(), child.exited.then((how) => { throw new Error(`exited (${how}) before listening`) })])) as { port: number, pid: number }
    return {
      name: 'fleetq',
      url: `mqtt://127.0.0.1:${ready.port}`,
      pid: ready.pid,
      traced,
      reset: async () => { await ask('reset') },
      report: async () => JSON.parse(await ask('report')) as StallReport,
      close: async () => {
        lines.close()
        await child.stop()
      }
    }
  } catch (err) {
    await child.stop()
    throw new Error(`fleetq did not start: ${(err as Error).message}\n${child.stderr()}`, { cause: err })
  }
}

/** CPU time and run-queue wait of all of a process's threads, ms (/proc/<pid>/task/<tid>/schedstat); null off Linux or once it exited. */
export function readSchedMs (pid: number): { runMs: number, waitMs: number } | null {
  let runMs = 0
  let waitMs = 0
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')
      runMs += Number(run) / 1e6
      waitMs += Number(wait) / 1e6
    }
  } catch {
    return null
  }
  return { runMs, waitMs }
}
