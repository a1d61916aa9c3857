// The connections curve of bench/curves.ts: N idle connections held by
// bench/connections-worker.ts processes (raw sockets, as `bench:connections`),
// then an active mqload pair: its throughput and p99, and the broker's RSS.
// Each point gets a fresh broker, so its RSS is that of N connections only.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { startFleetq, type BenchTarget } from './brokers.js'
import { withRaisedFileLimit } from './child.js'
import type { ConnectedReply, WorkerCommand, WorkerReply } from './connections-worker.js'
import type { CurvesOptions } from './curves-options.js'
import { firstLine } from './curves-messaging.js'
import { stamp, type Metric, type PointResult } from './curves-report.js'
import { startMosquitto } from './mosquitto.js'
import { runMqload } from './mqload.js'
import { readRssBytes } from './stats.js'

export const connectionsMetrics: readonly Metric[] = [
  { key: 'connectsPerSec', label: 'connects/s', digits: 0, ratio: true },
  { key: 'rssMb', label: 'RSS MB', digits: 1, ratio: false },
  { key: 'kbPerConnection', label: 'KB/conn', digits: 2, ratio: true },
  { key: 'pairMsgPerSec', label: 'pair msg/s', digits: 0, ratio: true },
  { key: 'pairP99Ms', label: 'pair p99 ms @1k/s', digits: 2, ratio: true }
]

const workerScript = fileURLToPath(new URL('./connections-worker.ts', import.meta.url))

/** Connections per connecting process: past a few thousand one Node process's CONNECT loop becomes the limit. */
const PER_WORKER = 5_000
/** Connections per source address 127.0.x.y: loopback has about 28,000 ephemeral ports per address (bench:connections). */
const PER_ADDRESS = 1_000
/** QoS 1 messages of the pair's saturated run. */
const PAIR_MESSAGES = 10_000

/** A connecting process, driven over IPC (the protocol of bench/connections-worker.ts). */
class ConnectingProcess {
  readonly #child: ChildProcess
  readonly #replies: WorkerReply[] = []
  #waiting: ((reply: WorkerReply) => void) | null = null
  readonly #exited: Promise<unknown>

  constructor () {
    const [file, args] = withRaisedFileLimit(process.execPath, ['--import', 'tsx', workerScript])
    this.#child = spawn(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.#exited = once(this.#child, 'exit')
    this.#child.on('message', (reply: WorkerReply) => {
      const waiting = this.#waiting
      if (waiting === null) this.#replies.push(reply)
      else { this.#waiting = null; waiting(reply) }
    })
  }

  async ready (): Promise<void> {
    const reply = await this.#next()
    if (reply.type !== 'ready') throw new Error(`connection worker said ${reply.type} before ready`)
  }

  async request (command: WorkerCommand): Promise<WorkerReply> {
    this.#child.send(command)
    return this.#next()
  }

  #next (): Promise<WorkerReply> {
    const queued = this.#replies.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    return new Promise((resolve, reject) => {
      this.#waiting = resolve
      void this.#exited.then(() => reject(new Error('connection worker exited')))
    })
  }

  async close (): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return
    if (this.#child.connected) await Promise.race([this.request({ type: 'close' }), sleep(10_000, undefined, { ref: false })]).catch(() => undefined)
    this.#child.kill('SIGKILL')
    await this.#exited
  }
}

function sourceAddresses (connections: number): string[] {
  const count = Math.ceil(connections / PER_ADDRESS)
  // 127.0.0.x is left alone: the brokers and the pair use 127.0.0.1.
  return Array.from({ length: count }, (_, i) => `127.0.${1 + Math.floor(i / 254)}.${1 + (i % 254)}`)
}

/** Holds `connections` idle connections to `target`; returns connects/s and a closer. */
async function holdConnections (target: BenchTarget, connections: number, runId: string): Promise<{ connected: number, failed: number, firstError: string | null, connectsPerSec: number, close: () => Promise<void> }> {
  const { hostname, port } = new URL(target.url)
  const count = Math.max(1, Math.ceil(connections / PER_WORKER))
  const workers = Array.from({ length: count }, () => new ConnectingProcess())
  const close = async (): Promise<void> => { await Promise.allSettled(workers.map((w) => w.close())) }
  try {
    await Promise.all(workers.map((w) => w.ready()))
    const addresses = sourceAddresses(connections)
    const base = Math.floor(connections / count)
    const replies = await Promise.all(workers.map((w, i) => {
      const first = i * base + Math.min(i, connections % count)
      return w.request({
        type: 'connect', host: hostname, port: Number(port), addresses, idPrefix: `curve-${runId}`, first,
        count: base + (i < connections % count ? 1 : 0), concurrency: 200, keepalive: 60, connackTimeoutMs: 20_000
      })
    })) as ConnectedReply[]
    const connected = replies.reduce((s, r) => s + r.ok, 0)
    // The workers start together; the slowest one's first connect to last CONNACK is the curve's time.
    const seconds = Math.max(...replies.map((r) => r.ms), 1) / 1000
    return { connected, failed: replies.reduce((s, r) => s + r.failed, 0), firstError: replies.find((r) => r.firstError !== null)?.firstError ?? null, connectsPerSec: connected / seconds, close }
  } catch (err) {
    await close()
    throw err
  }
}

async function measure (target: BenchTarget, connections: number, o: CurvesOptions, when: { at: string, loadAverage: number }): Promise<PointResult> {
  const { hostname, port } = new URL(target.url)
  const host = { host: hostname, port: Number(port) }
  const runId = `${Date.now().toString(36)}-${connections}`
  await runMqload({ ...host, pubs: 1, subs: 1, qos: 1, msgs: 2_000, topic: `fleetq-curves/${runId}/warm`, timeout: 30 })
  const rssBefore = target.pid === null ? null : readRssBytes(target.pid)
  const held = await holdConnections(target, connections, runId)
  try {
    // Settle: the broker's allocations after the last CONNACK (sessions, GC), as bench:connections does.
    await sleep(2_000)
    const rssWith = target.pid === null ? null : readRssBytes(target.pid)
    const burst = await runMqload({ ...host, pubs: 1, subs: 1, qos: 1, msgs: PAIR_MESSAGES, topic: `fleetq-curves/${runId}/burst`, timeout: o.timeout })
    const paced = await runMqload({ ...host, pubs: 1, subs: 1, qos: 1, rate: 1_000, msgs: o.pairSeconds * 1_000, topic: `fleetq-curves/${runId}/paced`, timeout: o.pairSeconds + 30 })
    const notes: string[] = []
    if (held.failed > 0) notes.push(`${held.failed} connections failed (${held.firstError ?? ''})`)
    if (burst.missing + paced.missing > 0) notes.push(`pair lost ${burst.missing + paced.missing}`)
    return {
      curve: 'connections',
      point: connections,
      system: target.name,
      ...when,
      values: {
        connected: held.connected,
        connectsPerSec: held.connectsPerSec,
        rssBeforeMb: rssBefore === null ? null : rssBefore / 2 ** 20,
        rssMb: rssWith === null ? null : rssWith / 2 ** 20,
        kbPerConnection: rssBefore === null || rssWith === null || held.connected === 0 ? null : (rssWith - rssBefore) / held.connected / 1024,
        pairMsgPerSec: burst.msgs_per_s,
        pairBurstP99Ms: burst.p99_ms,
        pairP50Ms: paced.p50_ms,
        pairP99Ms: paced.p99_ms
      },
      notes,
      failed: notes.length > 0
    }
  } finally {
    await held.close()
  }
}

/** Every point on a fresh fleetq and a fresh Mosquitto, one after the other, the order flipping per point. */
export async function runConnectionsCurve (points: readonly number[], o: CurvesOptions, progress: (line: string) => void, started: BenchTarget[]): Promise<PointResult[]> {
  const results: PointResult[] = []
  const starters: Array<[string, () => Promise<BenchTarget>]> = [['fleetq', () => startFleetq('level')], ['mosquitto', startMosquitto]]
  for (const [index, point] of points.entries()) {
    for (const [name, start] of index % 2 === 0 ? starters : [...starters].reverse()) {
      const when = stamp()
      let target: BenchTarget | null = null
      try {
        target = await start()
        started.push(target)
        const result = await measure(target, point, o, when)
        results.push(result)
        const v = result.values
        progress(`  connections ${point} ${name}: ${Math.round(v.connectsPerSec ?? 0)} connects/s, ${v.kbPerConnection?.toFixed(2) ?? '-'} KB/conn, pair ${Math.round(v.pairMsgPerSec ?? 0)} msg/s, p99 ${v.pairP99Ms?.toFixed(2) ?? '-'} ms @1k/s`)
      } catch (err) {
        results.push({ curve: 'connections', point, system: name, ...when, values: {}, notes: [firstLine(err)], failed: true })
        progress(`  connections ${point} ${name}: failed: ${firstLine(err)}`)
      } finally {
        await target?.close()
      }
    }
  }
  return results
}
