import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
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

const serverScript = fileURLToPath(new URL('./fleetq-server.ts', import.meta.url))

/** Starts bench/fleetq-server.ts as a child process on a fresh temporary data directory. */
export async function startFleetq (persistence: 'level' | 'memory' = 'level'): Promise<BenchTarget> {
  // process.execPath directly, not npx: the child's pid is the broker's pid.
  // The server makes and removes its own temporary data directory, so it is
  // removed even when this process is killed (the server sees stdin close).
  const child = spawnBrokerChild(process.execPath, ['--import', 'tsx', serverScript, '--persistence', persistence])
  const close = (): Promise<void> => child.stop()
  try {
    const ready = await readReadyLine(child.child.stdout, child.exited)
    return { name: 'fleetq', url: `mqtt://127.0.0.1:${ready.port}`, pid: ready.pid, close }
  } catch (err) {
    await close()
    throw new Error(`fleetq did not start: ${(err as Error).message}\n${child.stderr()}`, { cause: err })
  }
}

/**
 * Starts fleetq and Mosquitto (`--compare`), each in its own process. If
 * either fails to start, the other is stopped before the error propagates.
 */
export async function startCompareTargets (persistence: 'level' | 'memory'): Promise<BenchTarget[]> {
  const started = await Promise.allSettled([startFleetq(persistence), startMosquitto()])
  const targets = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failure = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failure !== undefined) {
    await Promise.allSettled(targets.map((t) => t.close()))
    throw failure.reason
  }
  return targets
}

interface ReadyLine {
  port: number
  pid: number
}

async function readReadyLine (stdout: NodeJS.ReadableStream | null, exited: Promise<string>): Promise<ReadyLine> {
  if (stdout === null) throw new Error('no stdout')
  const lines = createInterface({ input: stdout })
  const first = (async () => {
    for await (const line of lines) {
      const parsed = JSON.parse(line) as Partial<ReadyLine>
      if (typeof parsed.port === 'number' && typeof parsed.pid === 'number') return { port: parsed.port, pid: parsed.pid }
      throw new Error(`unexpected first line: ${line}`)
    }
    throw new Error('closed stdout before listening')
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
  } finally {
    clearTimeout(timer)
    lines.close()
  }
}
