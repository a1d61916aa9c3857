import { createInterface } from 'node:readline'
import { benchRuntime, nodeCommand } from './compiled.js'
import { spawnBrokerChild } from './child.js'
import { startMosquitto } from './mosquitto.js'

/** A broker the scenarios run against. */
export interface BenchTarget {
  /** Shown in the table's broker column. */
  name: string
  url: string
  /** Process to read RSS from; null when unknown. */
  pid: number | null
  /** Stops what this run started and removes its files. Idempotent. */
  close (): Promise<void>
}

/** A broker someone else runs (`--url`); closing it is not ours to do. */
export function externalTarget (url: string, pid: number | null): BenchTarget {
  const { host } = new URL(url)
  return { name: host, url, pid, close: () => Promise.resolve() }
}

const serverScript = new URL('./fleetq-server.ts', import.meta.url)

export interface FleetqChildOptions {
  persistence?: 'level' | 'memory'
  /** Open the HTTP listener and scrape /metrics every second (`fleetq+metrics`). */
  metrics?: boolean
  /** Extra flags for node, e.g. `--cpu-prof --cpu-prof-dir=<dir>`. */
  nodeArgs?: string[]
  /** More flags for bench/fleetq-server.ts, e.g. `--group-max-length 2000000`. */
  serverArgs?: string[]
}

/**
 * Starts bench/fleetq-server.ts as a child process on a fresh temporary data
 * directory. With `metrics`, fleetq also opens its HTTP listener and this
 * process scrapes /metrics every second while it runs, as Prometheus would
 * (`fleetq+metrics`): what metrics cost on the message path shows against
 * plain fleetq.
 */
export async function startFleetq (persistence: 'level' | 'memory' = 'level', metrics = false, more: Omit<FleetqChildOptions, 'persistence' | 'metrics'> = {}): Promise<BenchTarget> {
  // process.execPath directly, not npx: the child's pid is the broker's pid.
  // The server makes and removes its own temporary data directory, so it is
  // removed even when this process is killed (the server sees stdin close).
  const nodeArgs = more.nodeArgs ?? []
  const { execArgv, file } = await nodeCommand(serverScript, benchRuntime(nodeArgs))
  const child = spawnBrokerChild(process.execPath, [...nodeArgs, ...execArgv, file, '--persistence', persistence,
    ...(metrics ? ['--http'] : []), ...(more.serverArgs ?? [])])
  let scraper: NodeJS.Timeout | undefined
  const close = (): Promise<void> => {
    clearInterval(scraper)
    return child.stop()
  }
  try {
    const { ready, lines } = await readReadyLine(child.child.stdout, child.exited)
    if (metrics) {
      if (ready.httpPort === undefined) throw new Error('no httpPort in the ready line')
      const url = `http://127.0.0.1:${ready.httpPort}/metrics`
      scraper = setInterval(() => {
        fetch(url).then((res) => res.text()).catch(() => undefined) // a scrape lost at close does not matter
      }, 1000)
      scraper.unref()
    }
    const target: BenchTarget = { name: metrics ? 'fleetq+metrics' : 'fleetq', url: `mqtt://127.0.0.1:${ready.port}`, pid: ready.pid, close }
    lines.close()
    return target
  } catch (err) {
    await close()
    throw new Error(`fleetq did not start: ${(err as Error).message}\n${child.stderr()}`, { cause: err })
  }
}

/**
 * Starts fleetq and Mosquitto (`--compare`), each in its own process. If
 * either fails to start, the other is stopped before the error propagates.
 */
export async function startCompareTargets (persistence: 'level' | 'memory', metrics: 'off' | 'on' | 'both' = 'off', more: Omit<FleetqChildOptions, 'persistence' | 'metrics'> = {}): Promise<BenchTarget[]> {
  const started = await Promise.allSettled([...fleetqVariants(metrics).map((m) => startFleetq(persistence, m, more)), startMosquitto()])
  const targets = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failure !== undefined) {
    await Promise.allSettled(targets.map((t) => t.close()))
    throw failure.reason
  }
  return targets
}

/** The fleetq targets of `--metrics`: without metrics, with, or both. */
export function fleetqVariants (metrics: 'off' | 'on' | 'both'): boolean[] {
  return metrics === 'both' ? [false, true] : [metrics === 'on']
}

interface ReadyLine {
  port: number
  pid: number
  httpPort?: number
}

interface LineReader {
  next (): Promise<IteratorResult<string>>
  close (): void
}

/** The ready line, and a reader for the lines after it. */
async function readReadyLine (stdout: NodeJS.ReadableStream | null, exited: Promise<string>): Promise<{ ready: ReadyLine, lines: LineReader }> {
  if (stdout === null) throw new Error('no stdout')
  const rl = createInterface({ input: stdout })
  const iterator = rl[Symbol.asyncIterator]()
  const lines: LineReader = { next: () => iterator.next(), close: () => rl.close() }
  const first = (async () => {
    const { value: line, done } = await iterator.next()
    if (done === true) throw new Error('closed stdout before listening')
    const parsed = JSON.parse(line) as Partial<ReadyLine>
    if (typeof parsed.port === 'number' && typeof parsed.pid === 'number') {
      return { ready: { port: parsed.port, pid: parsed.pid, ...(typeof parsed.httpPort === 'number' ? { httpPort: parsed.httpPort } : {}) }, lines }
    }
    throw new Error(`unexpected first line: ${line}`)
  })()
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('not listening after 30 s')), 30_000)
  })
  const died = exited.then((how): never => { throw new Error(`exited (${how}) before listening`) })
  // The losers of the race settle later (the child exits at close); they must
  // not surface as unhandled rejections.
  for (const p of [first, timeout, died]) p.catch(() => undefined)
  try {
    return await Promise.race([first, timeout, died])
  } catch (err) {
    rl.close()
    throw err
  } finally {
    clearTimeout(timer)
  }
}
