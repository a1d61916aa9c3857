// What bench/tasks.ts and its producer and worker processes tell each other
// over Node's IPC channel (child_process.fork). Only start-up, start and the
// final report cross it: nothing per task, so it costs the measured run
// nothing.
import { once } from 'node:events'

/** How the producer drives its load; the same for every system. */
export interface LoadPlan {
  /** Tasks to submit. */
  tasks: number
  /** Most tasks submitted and not yet acknowledged (PUBACK, or add() resolved). */
  window: number
  /** Most tasks submitted and not yet completed; 0 = no bound (a backlog builds up at the broker). */
  maxPending: number
  /** Tasks per second, evenly spaced; 0 = as fast as the window allows. */
  rate: number
  /** Tasks per submit call: 1 = submit()/add(), more = submitMany()/addBulk(). */
  batch: number
  /** Upper bound on the run, in milliseconds. */
  timeoutMs: number
}

/** argv[2] of a producer process. */
export interface ProducerConfig {
  /** fleetq: mqtt://host:port; BullMQ: redis://host:port. */
  endpoint: string
  /** Queue name (BullMQ) or client id prefix (fleetq), unique per run. */
  name: string
  plan: LoadPlan
  /** Tasks submitted and awaited before the measured run, unreported. */
  warmup: number
}

/** argv[2] of a worker process. */
export interface WorkerConfig {
  endpoint: string
  name: string
  /** This worker process's number, for its client id. */
  index: number
  concurrency: number
}

export interface ProducerReport {
  kind: 'report'
  submitted: number
  completed: number
  failed: number
  /** First submit to last completion seen by the producer. */
  seconds: number
  /** First submit to last acknowledgement of a submit. */
  submitSeconds: number
  /** Submit call to completion seen by the producer, in ms; null with no completion. */
  p50Ms: number | null
  p99Ms: number | null
  maxMs: number | null
  /** The producer's worst event-loop stall: above a few ms it inflates the latencies it measures. */
  loopDelayMaxMs: number
  /** Why the run stopped early (timeout, no progress, an error), or null. */
  error: string | null
}

export interface WorkerStopped {
  kind: 'stopped'
  /** Tasks this process's handler ran. */
  processed: number
}

export type ChildMessage = { kind: 'ready' } | ProducerReport | WorkerStopped
export type ParentMessage = { kind: 'start' } | { kind: 'stop' }

/** Sends to the parent (a child always has the channel: it was forked); resolves once sent. */
export function tell (message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) resolve()
    else process.send(message, undefined, {}, () => resolve())
  })
}

/** Resolves with the parent's next message of `kind`. */
export async function heard (kind: ParentMessage['kind']): Promise<void> {
  for (;;) {
    const [message] = await once(process, 'message') as [ParentMessage]
    if (message.kind === kind) return
  }
}

/** The config a parent passed as argv[2]. */
export function configFromArgv<T> (): T {
  const text = process.argv[2]
  if (text === undefined) {
    process.stderr.write('usage: started by bench/tasks.ts with a JSON config as its argument\n')
    process.exit(2)
  }
  return JSON.parse(text) as T
}

/** A child ends when its parent goes away: no process outlives the benchmark. */
export function exitWithParent (cleanup: () => Promise<void>): void {
  process.once('disconnect', () => {
    void cleanup().finally(() => process.exit(0))
  })
}
