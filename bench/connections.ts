// Many idle connections: connect rate, broker memory per idle connection, a
// reconnect storm, and an active pair's latency while they are held.
// Usage: npm run bench:connections -- [--connections 19000] [--workers 2] [--brokers fleetq,mosquitto] [--json]
// See docs/benchmarks.md "Idle connections" for what each figure means.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startFleetq, type BenchTarget } from './brokers.js'
import { withRaisedFileLimit } from './child.js'
import type { ConnectedReply, WorkerCommand, WorkerReply } from './connections-worker.js'
import { startMosquitto } from './mosquitto.js'
import { ensureMqload, runMqload, type MqloadResult } from './mqload.js'
import { loadAverage } from './report.js'
import { readCpuSeconds, readRssBytes } from './stats.js'

const usage = `Usage: npm run bench:connections -- [options]

  --connections <n>     idle connections to hold (default 19000: the hard open-file limit here is 20,000 per process)
  --workers <n>         connecting processes (default 2)
  --per-address <n>     connections per source address 127.0.1.x (default 1000; loopback has ~28,000 ephemeral ports per address)
  --concurrency <n>     connections awaiting CONNACK at once, per worker (default 200)
  --keepalive <s>       keep-alive of the idle connections; they ping at that period, spread out (default 60)
  --connack-timeout <s> a connection without CONNACK after this long counts as failed (default 20)
  --latency-seconds <s> length of each active-pair latency run, 1,000 msg/s QoS 1 (default 5)
  --skip-storm          leave out the reconnect storm (keeps a run with many connections short)
  --brokers <a,b>       fleetq, mosquitto (default both)
  --persistence <kind>  level | memory, for fleetq (default level)
  --cpu-prof <dir>      run fleetq under \`node --cpu-prof\`, writing its profile (and sourcemaps.json) to <dir>;
                        read it with \`npx tsx bench/cpu-profile-top.ts <dir>/<file>.cpuprofile\`
  --json                print the results as JSON on stdout
`

interface Options {
  connections: number
  workers: number
  perAddress: number
  concurrency: number
  keepalive: number
  connackTimeoutMs: number
  latencySeconds: number
  skipStorm: boolean
  brokers: string[]
  persistence: 'level' | 'memory'
  cpuProfDir: string | null
  json: boolean
}

export interface ConnectionsResult {
  broker: string
  connections: number
  connected: number
  failed: number
  firstError: string | null
  /** Connections per second, all workers together, first connect to last CONNACK. */
  connectsPerSec: number
  /** Broker CPU (user + system) from the first connect to the last CONNACK, per connection, µs: less at the mercy of a busy machine than the rate. */
  connectCpuUs: number | null
  rssBeforeMb: number | null
  rssAfterMb: number | null
  /** (RSS with the connections − RSS before) / connections, bytes. */
  rssPerConnectionBytes: number | null
  /** Broker CPU while holding the idle connections (keep-alive pings only), % of one core. */
  idleCpuPercent: number | null
  /** Null with --skip-storm. */
  reconnected: number | null
  reconnectFailed: number | null
  reconnectsPerSec: number | null
  /** Broker CPU through the storm (the old connections' closes and the new CONNECTs) per reconnection, µs. */
  reconnectCpuUs: number | null
  rssAfterStormMb: number | null
  /** QoS 1, 1 → 1 at 1,000 msg/s: with no other connection, then while the idle ones are held. */
  idlePair: PairLatency
  loadedPair: PairLatency
  loadAverage: { start: number, end: number }
}

interface PairLatency {
  p50Ms: number
  p99Ms: number
  maxMs: number
  missing: number
}

function parse (argv: string[]): Options | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      connections: { type: 'string', default: '19000' },
      workers: { type: 'string', default: '2' },
      'per-address': { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '200' },
      keepalive: { type: 'string', default: '60' },
      'connack-timeout': { type: 'string', default: '20' },
      'latency-seconds': { type: 'string', default: '5' },
      'skip-storm': { type: 'boolean', default: false },
      brokers: { type: 'string', default: 'fleetq,mosquitto' },
      persistence: { type: 'string', default: 'level' },
      'cpu-prof': { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) return null
  const int = (flag: string, raw: string, min: number, max: number): number => {
    const n = Number(raw)
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`--${flag}: must be an integer from ${min} to ${max}, got "${raw}"`)
    return n
  }
  const brokers = values.brokers.split(',').map((b) => b.trim())
  for (const b of brokers) if (b !== 'fleetq' && b !== 'mosquitto') throw new Error(`--brokers: unknown broker "${b}"`)
  if (values.persistence !== 'level' && values.persistence !== 'memory') throw new Error(`--persistence: must be level or memory, got "${values.persistence}"`)
  return {
    connections: int('connections', values.connections, 1, 1_000_000),
    workers: int('workers', values.workers, 1, 64),
    perAddress: int('per-address', values['per-address'], 1, 28_000),
    concurrency: int('concurrency', values.concurrency, 1, 10_000),
    keepalive: int('keepalive', values.keepalive, 0, 65_535),
    connackTimeoutMs: int('connack-timeout', values['connack-timeout'], 1, 600) * 1000,
    latencySeconds: int('latency-seconds', values['latency-seconds'], 1, 600),
    skipStorm: values['skip-storm'],
    brokers,
    persistence: values.persistence,
    cpuProfDir: values['cpu-prof'] ?? null,
    json: values.json
  }
}

const workerScript = fileURLToPath(new URL('./connections-worker.ts', import.meta.url))

/** A connecting process, driven over IPC. */
class Worker {
  readonly #child: ChildProcess
  readonly #replies: WorkerReply[] = []
  #waiting: ((reply: WorkerReply) => void) | null = null
  readonly #ready: Promise<void>

  constructor () {
    const [file, args] = withRaisedFileLimit(process.execPath, ['--import', 'tsx', workerScript])
    this.#child = spawn(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.#child.on('message', (reply: WorkerReply) => {
      const waiting = this.#waiting
      if (waiting === null) this.#replies.push(reply)
      else { this.#waiting = null; waiting(reply) }
    })
    this.#ready = this.#next().then((reply) => {
      if (reply.type !== 'ready') throw new Error(`connection worker said ${reply.type} before ready`)
    })
  }

  async request (command: WorkerCommand): Promise<WorkerReply> {
    await this.#ready
    this.#child.send(command)
    return this.#next()
  }

  #next (): Promise<WorkerReply> {
    const queued = this.#replies.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    return new Promise((resolve, reject) => {
      this.#waiting = resolve
      this.#child.once('exit', (code) => reject(new Error(`connection worker exited (${String(code)})`)))
    })
  }

  async close (): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    const exited = once(this.#child, 'exit')
    if (this.#child.connected) await this.request({ type: 'close' }).catch(() => undefined)
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
}

function sourceAddresses (connections: number, perAddress: number): string[] {
  const count = Math.ceil(connections / perAddress)
  if (count > 254 * 254) throw new Error('too many source addresses')
  // 127.0.0.x is left alone: the brokers and the active pair use 127.0.0.1.
  return Array.from({ length: count }, (_, i) => `127.0.${1 + Math.floor(i / 254)}.${1 + (i % 254)}`)
}

async function pairLatency (target: BenchTarget, seconds: number, topic: string): Promise<PairLatency> {
  const { hostname, port } = new URL(target.url)
  const r: MqloadResult = await runMqload({ host: hostname, port: Number(port), pubs: 1, subs: 1, qos: 1, rate: 1_000, msgs: seconds * 1_000, timeout: seconds + 30, topic })
  return { p50Ms: r.p50_ms, p99Ms: r.p99_ms, maxMs: r.max_ms, missing: r.missing }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const mb = (bytes: number | null): number | null => (bytes === null ? null : bytes / 1024 / 1024)
const cpuSeconds = (target: BenchTarget): number | null => (target.pid === null ? null : readCpuSeconds(target.pid))
/** µs of CPU per item between two readings; null without both or without items. */
const cpuPer = (before: number | null, after: number | null, items: number): number | null =>
  (before === null || after === null || items === 0 ? null : ((after - before) / items) * 1e6)

async function measure (target: BenchTarget, o: Options, progress: (line: string) => void): Promise<ConnectionsResult> {
  const loadStart = loadAverage()
  const { hostname, port } = new URL(target.url)
  const runId = Date.now().toString(36)
  progress(`${target.name}: warm-up and idle-pair latency`)
  await runMqload({ host: hostname, port: Number(port), pubs: 1, subs: 1, qos: 1, msgs: 5_000, topic: `fleetq-conn/${runId}/warm` })
  const idlePair = await pairLatency(target, o.latencySeconds, `fleetq-conn/${runId}/idle`)
  await sleep(1_000)
  const rssBefore = target.pid === null ? null : readRssBytes(target.pid)

  const addresses = sourceAddresses(o.connections, o.perAddress)
  const workers = Array.from({ length: o.workers }, () => new Worker())
  try {
    const share = (w: number): { first: number, count: number } => {
      const base = Math.floor(o.connections / o.workers)
      const first = w * base + Math.min(w, o.connections % o.workers)
      return { first, count: base + (w < o.connections % o.workers ? 1 : 0) }
    }
    const together = async (command: (w: number) => WorkerCommand): Promise<{ replies: ConnectedReply[], seconds: number }> => {
      const started = performance.now()
      const replies = await Promise.all(workers.map((worker, w) => worker.request(command(w)))) as ConnectedReply[]
      // Each worker times its own first connect to its last CONNACK; they start together.
      return { replies, seconds: Math.max(...replies.map((r) => r.ms), 1) / 1000 || (performance.now() - started) / 1000 }
    }
    progress(`${target.name}: connecting ${o.connections} over ${o.workers} processes from ${addresses.length} source addresses`)
    const connectCpu0 = cpuSeconds(target)
    const connect = await together((w) => ({
      type: 'connect', host: hostname, port: Number(port), addresses, idPrefix: `idle-${runId}`, ...share(w), concurrency: o.concurrency, keepalive: o.keepalive, connackTimeoutMs: o.connackTimeoutMs
    }))
    const connected = connect.replies.reduce((s, r) => s + r.ok, 0)
    const connectCpuUs = cpuPer(connectCpu0, cpuSeconds(target), connected)
    const failed = connect.replies.reduce((s, r) => s + r.failed, 0)
    progress(`  ${connected} connected, ${failed} failed, ${Math.round(connected / connect.seconds)} connects/s${failed > 0 ? ` (${connect.replies.find((r) => r.firstError !== null)?.firstError ?? ''})` : ''}`)

    // Settle: the broker's allocations after the last CONNACK (session setup, GC).
    await sleep(3_000)
    const rssAfter = target.pid === null ? null : readRssBytes(target.pid)
    const cpu0 = target.pid === null ? null : readCpuSeconds(target.pid)
    await sleep(3_000)
    const cpu1 = target.pid === null ? null : readCpuSeconds(target.pid)
    progress(`${target.name}: active-pair latency with ${connected} idle connections held`)
    const loadedPair = await pairLatency(target, o.latencySeconds, `fleetq-conn/${runId}/loaded`)

    let reconnected: number | null = null
    let reconnectFailed: number | null = null
    let reconnectsPerSec: number | null = null
    let reconnectCpuUs: number | null = null
    let rssAfterStorm: number | null = null
    if (!o.skipStorm) {
      progress(`${target.name}: reconnect storm (all dropped at once, all reconnect)`)
      const stormCpu0 = cpuSeconds(target)
      const storm = await together(() => ({ type: 'storm', concurrency: o.concurrency, connackTimeoutMs: o.connackTimeoutMs }))
      reconnected = storm.replies.reduce((s, r) => s + r.ok, 0)
      reconnectCpuUs = cpuPer(stormCpu0, cpuSeconds(target), reconnected)
      reconnectFailed = storm.replies.reduce((s, r) => s + r.failed, 0)
      reconnectsPerSec = reconnected / storm.seconds
      progress(`  ${reconnected} reconnected, ${reconnectFailed} failed, ${Math.round(reconnectsPerSec)} reconnects/s${reconnectFailed > 0 ? ` (${storm.replies.find((r) => r.firstError !== null)?.firstError ?? ''})` : ''}`)
      await sleep(2_000)
      rssAfterStorm = target.pid === null ? null : readRssBytes(target.pid)
    }
    return {
      broker: target.name,
      connections: o.connections,
      connected,
      failed,
      firstError: connect.replies.find((r) => r.firstError !== null)?.firstError ?? null,
      connectsPerSec: connected / connect.seconds,
      connectCpuUs,
      rssBeforeMb: mb(rssBefore),
      rssAfterMb: mb(rssAfter),
      rssPerConnectionBytes: rssBefore === null || rssAfter === null || connected === 0 ? null : (rssAfter - rssBefore) / connected,
      idleCpuPercent: cpu0 === null || cpu1 === null ? null : ((cpu1 - cpu0) / 3) * 100,
      reconnected,
      reconnectFailed,
      reconnectsPerSec,
      reconnectCpuUs,
      rssAfterStormMb: mb(rssAfterStorm),
      idlePair,
      loadedPair,
      loadAverage: { start: loadStart, end: loadAverage() }
    }
  } finally {
    await Promise.allSettled(workers.map((w) => w.close()))
  }
}

function formatResults (results: readonly ConnectionsResult[]): string {
  const rows: Array<[string, (r: ConnectionsResult) => string]> = [
    ['connected / asked', (r) => `${r.connected} / ${r.connections}${r.failed > 0 ? ` (${r.failed} failed: ${r.firstError ?? ''})` : ''}`],
    ['connects/s', (r) => Math.round(r.connectsPerSec).toLocaleString('en-US')],
    ['broker CPU µs per connect', (r) => r.connectCpuUs?.toFixed(0) ?? '-'],
    ['RSS before → with connections, MB', (r) => `${r.rssBeforeMb?.toFixed(1) ?? '-'} → ${r.rssAfterMb?.toFixed(1) ?? '-'}`],
    ['RSS per idle connection', (r) => (r.rssPerConnectionBytes === null ? '-' : `${(r.rssPerConnectionBytes / 1024).toFixed(2)} KB`)],
    ['broker CPU while idle (pings), % of a core', (r) => r.idleCpuPercent?.toFixed(1) ?? '-'],
    ['reconnect storm: reconnected', (r) => (r.reconnected === null ? '-' : `${r.reconnected}${(r.reconnectFailed ?? 0) > 0 ? ` (${r.reconnectFailed ?? 0} failed)` : ''}`)],
    ['reconnects/s', (r) => (r.reconnectsPerSec === null ? '-' : Math.round(r.reconnectsPerSec).toLocaleString('en-US'))],
    ['broker CPU µs per reconnect', (r) => r.reconnectCpuUs?.toFixed(0) ?? '-'],
    ['RSS after the storm, MB', (r) => r.rssAfterStormMb?.toFixed(1) ?? '-'],
    ['pair p50 / p99 ms, alone', (r) => `${r.idlePair.p50Ms.toFixed(2)} / ${r.idlePair.p99Ms.toFixed(2)}`],
    ['pair p50 / p99 ms, connections held', (r) => `${r.loadedPair.p50Ms.toFixed(2)} / ${r.loadedPair.p99Ms.toFixed(2)}`],
    ['pair p99 held / alone', (r) => `${(r.loadedPair.p99Ms / r.idlePair.p99Ms).toFixed(2)}×`],
    ['load average start / end', (r) => `${r.loadAverage.start.toFixed(2)} / ${r.loadAverage.end.toFixed(2)}`]
  ]
  const header = ['', ...results.map((r) => r.broker)]
  const cells = rows.map(([name, f]) => [name, ...results.map(f)])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]?.length ?? 0)))
  const line = (c: string[]): string => '| ' + c.map((x, i) => (i === 0 ? x.padEnd(widths[i] ?? 0) : x.padStart(widths[i] ?? 0))).join(' | ') + ' |'
  return [line(header), '| ' + widths.map((w, i) => (i === 0 ? '-'.repeat(w) : '-'.repeat(w - 1) + ':')).join(' | ') + ' |', ...cells.map(line)].join('\n')
}

async function main (argv: string[]): Promise<number> {
  let options: Options | null
  try {
    options = parse(argv)
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`)
    return 2
  }
  if (options === null) {
    process.stdout.write(usage)
    return 0
  }
  await ensureMqload()
  const progress = (line: string): void => { process.stderr.write(line + '\n') }
  const results: ConnectionsResult[] = []
  const targets: BenchTarget[] = []
  const onSignal = (): void => { void Promise.allSettled(targets.map((t) => t.close())).finally(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    // One broker at a time: each gets the machine (and the ports) to itself.
    for (const name of options.brokers) {
      const nodeArgs = options.cpuProfDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfDir}`]
      const target = name === 'fleetq' ? await startFleetq(options.persistence, false, { nodeArgs }) : await startMosquitto()
      targets.push(target)
      try {
        results.push(await measure(target, options, progress))
      } finally {
        await target.close()
      }
    }
    if (options.json) process.stdout.write(JSON.stringify({ options, node: process.version, results }, null, 2) + '\n')
    else process.stdout.write(`\n${options.connections} idle connections (clean, keep-alive ${options.keepalive}), ${options.workers} connecting processes, raw sockets\n\n${formatResults(results)}\n`)
    return results.every((r) => r.failed === 0 && (r.reconnectFailed ?? 0) === 0) ? 0 : 1
  } catch (err) {
    process.stderr.write(`bench:connections failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    return 1
  } finally {
    await Promise.allSettled(targets.map((t) => t.close()))
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

process.exitCode = await main(process.argv.slice(2))
