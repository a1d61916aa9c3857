// Delayed messages ($delayed/{seconds}/{topic}, docs/scheduling.md): how precisely they
// fire, whether a backlog slows ordinary traffic, how a backlog changes
// startup, and how fast a burst falling due at once drains.
//   npm run bench:delayed [-- --url mqtt://host:port] [--backlog 100000] [--quick]
// Prints a Markdown table per measurement on stdout, then one JSON line.
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import {
  closeClients, insertBacklog, measureBurst, measurePrecision, Pinger, spawnFleetq, summarize,
  type BurstResult, type Ctx, type FleetqProcess, type InsertResult, type PrecisionResult, type RoundTrips, type Summary
} from './delayed-load.js'
import { readRssBytes } from './stats.js'

const usage = `Usage: npm run bench:delayed -- [options]

  --url <mqtt://host:port>  run against a running broker (skips startup timing and RSS)
  --backlog <n>             delayed messages pending during the backlog measurement (default 100000, 5000 with --quick; 0 = skip)
  --quick                   small numbers, for a CI smoke run (under 20 s)
  --help
`

interface Plan {
  precision: { count: number, minMs: number, maxMs: number, intervalMs: number }
  rtt: { count: number, intervalMs: number }
  backlog: number
  /** Unacknowledged publishes while inserting the backlog. */
  backlogWindow: number
  burst: { count: number, delayMs: number }
  /** Starts measured per data dir (empty, with backlog); the fastest is reported. */
  startupRounds: number
}

function parse (argv: string[]): { url: string | null, plan: Plan, quick: boolean } | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: { url: { type: 'string' }, backlog: { type: 'string' }, quick: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }
  })
  if (values.help === true) return 'help'
  const url = values.url ?? null
  if (url !== null && !url.startsWith('mqtt://')) throw new TypeError(`--url: only mqtt:// URLs are supported, got ${url}`)
  const quick = values.quick === true
  const backlog = values.backlog === undefined ? (quick ? 5_000 : 100_000) : Number(values.backlog)
  if (!Number.isSafeInteger(backlog) || backlog < 0 || backlog > 10_000_000) throw new TypeError(`--backlog: must be an integer from 0 to 10000000, got "${String(values.backlog)}"`)
  const plan: Plan = quick
    ? { precision: { count: 50, minMs: 200, maxMs: 2_000, intervalMs: 10 }, rtt: { count: 300, intervalMs: 2 }, backlog, backlogWindow: 1_000, burst: { count: 2_000, delayMs: 2_000 }, startupRounds: 1 }
    : { precision: { count: 200, minMs: 200, maxMs: 2_000, intervalMs: 10 }, rtt: { count: 2_000, intervalMs: 2 }, backlog, backlogWindow: 1_000, burst: { count: 10_000, delayMs: 3_000 }, startupRounds: 2 }
  return { url, plan, quick }
}

interface RttFigures extends Summary {
  sent: number
  lost: number
  /** Longest stall of this process's event loop meanwhile: above ~50 ms the figures measure the machine. */
  generatorLagMs: number
}

interface StartFigures {
  /** From spawn to the {"port"} line, ms, one per round. */
  startMs: number[]
  /** VmRSS one second after the {"port"} line, MiB. */
  rssMb: number | null
}

interface Results {
  precision: PrecisionResult | null
  rttBefore: RttFigures | null
  backlog: (InsertResult & { brokerRssMb: number | null, dataDirMb: number | null, stopMs: number | null }) | null
  rttWithBacklog: RttFigures | null
  startEmpty: StartFigures | null
  startWithBacklog: StartFigures | null
  burst: BurstResult | null
  burstGeneratorLagMs: number | null
}

/** Everything started, so an error or Ctrl-C still stops and removes it all. */
class Resources {
  readonly processes: FleetqProcess[] = []
  dir: string | null = null
  #closing: Promise<void> | null = null

  close (ctx: Ctx): Promise<void> {
    this.#closing ??= (async () => {
      await closeClients(ctx)
      await Promise.allSettled(this.processes.map((p) => p.stop()))
      if (this.dir !== null) await rm(this.dir, { recursive: true, force: true })
    })()
    return this.#closing
  }
}

const mb = (bytes: number | null): number | null => bytes === null ? null : bytes / 2 ** 20
const progress = (line: string): void => { process.stderr.write(line + '\n') }

async function main (argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`)
    return 2
  }
  if (parsed === 'help') { process.stdout.write(usage); return 0 }
  const { url, plan, quick } = parsed

  const runId = `dl-${randomBytes(4).toString('hex')}`
  const ctx: Ctx = { url: url ?? '', runId, tag: randomBytes(4).readUInt32LE(0) >>> 1, clients: [] }
  const res = new Resources()
  const onSignal = (signal: NodeJS.Signals): void => {
    progress(`\n${signal}: stopping`)
    void res.close(ctx).finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const results: Results = { precision: null, rttBefore: null, backlog: null, rttWithBacklog: null, startEmpty: null, startWithBacklog: null, burst: null, burstGeneratorLagMs: null }
  const environment = { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model.trim() ?? 'unknown', loadAverage: loadavg()[0] ?? 0 }
  let error: string | null = null
  try {
    let broker: FleetqProcess | null = null
    if (url === null) {
      res.dir = await mkdtemp(join(tmpdir(), 'fleetq-bench-delayed-'))
      broker = await start(res, join(res.dir, 'backlog'))
      ctx.url = broker.url
    }
    progress(`broker ${ctx.url}${url === null ? ' (fleetq child process, fresh data dir)' : ''}`)

    progress(`precision: ${plan.precision.count} delayed messages, delays ${plan.precision.minMs / 1000}-${plan.precision.maxMs / 1000} s`)
    results.precision = await measurePrecision(ctx, plan.precision.count, plan.precision.minMs, plan.precision.maxMs, plan.precision.intervalMs)

    const pinger = new Pinger(ctx, 'ordinary')
    await pinger.open()
    // Unreported: the broker's hot paths are compiled before the first figure.
    await pinger.run(Math.min(500, plan.rtt.count), 1, 10_000)
    progress(`round trips before the backlog: ${plan.rtt.count}`)
    results.rttBefore = await roundTrips(pinger, plan)

    if (plan.backlog > 0) {
      if (url !== null) progress(`note: ${plan.backlog} messages stay pending on ${url} and fire in an hour to fleetq-bench/${runId}/backlog/#`)
      progress(`inserting a backlog of ${plan.backlog} delayed messages due in an hour`)
      const insert = await insertBacklog(ctx, plan.backlog, plan.backlogWindow, 60_000 + plan.backlog)
      results.backlog = { ...insert, brokerRssMb: broker === null ? null : mb(readRssBytes(broker.pid)), dataDirMb: null, stopMs: null }
      progress(`round trips with ${insert.acked} pending: ${plan.rtt.count}`)
      results.rttWithBacklog = await roundTrips(pinger, plan)
    }

    if (broker !== null && res.dir !== null) {
      await closeClients(ctx)
      const stopMs = await broker.stop()
      if (results.backlog !== null) {
        results.backlog.stopMs = stopMs
        results.backlog.dataDirMb = mb(await dirBytes(join(res.dir, 'backlog')))
      }
      // Alternating, so both see the same machine; the fastest of each is reported.
      const empty: StartFigures = { startMs: [], rssMb: null }
      const full: StartFigures = { startMs: [], rssMb: null }
      for (let round = 0; round < plan.startupRounds; round++) {
        progress(`startup round ${round + 1}/${plan.startupRounds}: empty data dir, then the one with the backlog`)
        const e = await start(res, join(res.dir, `empty-${round}`))
        empty.startMs.push(e.startMs)
        empty.rssMb = await settledRss(e)
        await e.stop()
        broker = await start(res, join(res.dir, 'backlog'))
        full.startMs.push(broker.startMs)
        full.rssMb = await settledRss(broker)
        if (round < plan.startupRounds - 1) await broker.stop()
      }
      results.startEmpty = empty
      results.startWithBacklog = full
      ctx.url = broker.url
    }

    progress(`burst: ${plan.burst.count} delayed messages due at one instant, ${plan.burst.delayMs / 1000} s ahead`)
    const burstPinger = new Pinger(ctx, 'during-burst')
    await burstPinger.open()
    const lag = monitorEventLoopDelay({ resolution: 10 })
    lag.enable()
    results.burst = await measureBurst(ctx, burstPinger, plan.burst.count, plan.burst.delayMs, quick ? 15_000 : 60_000)
    lag.disable()
    results.burstGeneratorLagMs = lag.max / 1e6
  } catch (err) {
    error = err instanceof Error ? err.message : String(err)
    progress(`bench failed: ${error}`)
  } finally {
    await res.close(ctx)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }

  const lost = lostMessages(results, plan)
  process.stdout.write('\n' + report(results, plan, url, environment) + '\n')
  process.stdout.write(JSON.stringify({ bench: 'delayed', runId, url, quick, plan, environment, results, lost, error }) + '\n')
  return error === null && lost === 0 ? 0 : 1
}

async function start (res: Resources, dataDir: string): Promise<FleetqProcess> {
  await mkdir(dataDir, { recursive: true })
  const p = await spawnFleetq(dataDir)
  res.processes.push(p)
  return p
}

/** RSS a second after start: what startup left behind, not its transient peak. */
async function settledRss (p: FleetqProcess): Promise<number | null> {
  await sleep(1_000)
  return mb(readRssBytes(p.pid))
}

async function roundTrips (pinger: Pinger, plan: Plan): Promise<RttFigures> {
  const lag = monitorEventLoopDelay({ resolution: 10 })
  lag.enable()
  const r: RoundTrips = await pinger.run(plan.rtt.count, plan.rtt.intervalMs, plan.rtt.count * plan.rtt.intervalMs + 30_000)
  lag.disable()
  return { ...summarize(Array.from(r.rtt)), sent: r.sent, lost: r.sent - r.received, generatorLagMs: lag.max / 1e6 }
}

async function dirBytes (dir: string): Promise<number | null> {
  try {
    let total = 0
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      total += entry.isDirectory() ? (await dirBytes(path) ?? 0) : (await stat(path)).size
    }
    return total
  } catch {
    return null
  }
}

function lostMessages (r: Results, plan: Plan): number {
  let lost = 0
  if (r.precision !== null) lost += r.precision.sent - r.precision.delivered
  for (const rtt of [r.rttBefore, r.rttWithBacklog]) if (rtt !== null) lost += rtt.lost
  if (r.backlog !== null) lost += plan.backlog - r.backlog.acked
  if (r.burst !== null) lost += r.burst.messages - r.burst.delivered + r.burst.pingsLost
  return lost
}

// ---- report ----------------------------------------------------------------

const num = (v: number | null | undefined, digits = 1): string => v === null || v === undefined ? '-' : v.toFixed(digits)
const int = (v: number | null | undefined): string => v === null || v === undefined ? '-' : Math.round(v).toLocaleString('en-US')

/** A Markdown table, first column left-aligned, the rest right-aligned (as bench/report.ts). */
function table (header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)))
  const align = (cells: string[]): string => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ') + ' |'
  const rule = '| ' + widths.map((w, i) => (i === 0 ? '-'.repeat(w) : '-'.repeat(Math.max(w - 1, 1)) + ':')).join(' | ') + ' |'
  return [align(header), rule, ...rows.map(align)].join('\n')
}

function report (r: Results, plan: Plan, url: string | null, env: { node: string, cpus: number, cpuModel: string, loadAverage: number }): string {
  const out: string[] = [
    `broker: ${url ?? 'fleetq (level persistence, child process)'}`,
    `machine: ${env.cpus} x ${env.cpuModel}, Node ${env.node}, load average ${env.loadAverage.toFixed(2)} at start`,
    ''
  ]
  const p = r.precision
  if (p !== null) {
    out.push(`Firing precision: ${plan.precision.count} messages, delays random in ${plan.precision.minMs / 1000}-${plan.precision.maxMs / 1000} s, one per ${plan.precision.intervalMs} ms; lateness = arrival - (send + delay)`, '')
    out.push(table(['delivered', 'min ms', 'p50 ms', 'p99 ms', 'max ms'], [[`${p.delivered}/${p.sent}${p.duplicates > 0 ? ` (${p.duplicates} dup)` : ''}`, num(p.lateness.min, 2), num(p.lateness.p50, 2), num(p.lateness.p99, 2), num(p.lateness.max, 2)]]), '')
  }
  const rttRows: string[][] = []
  const rttRow = (name: string, f: RttFigures | null): void => {
    if (f !== null) rttRows.push([name, `${f.sent - f.lost}/${f.sent}`, num(f.p50, 2), num(f.p99, 2), num(f.max, 1), num(f.generatorLagMs, 0)])
  }
  rttRow('no backlog', r.rttBefore)
  rttRow(`${int(r.backlog?.acked)} pending`, r.rttWithBacklog)
  if (r.burst !== null) {
    const s = r.burst.pingsDuringDrain
    rttRows.push([`during the burst drain (${int(r.backlog?.acked ?? 0)} pending)`, `${s.count}/${s.count + r.burst.pingsLost}`, num(s.p50, 2), num(s.p99, 2), num(s.max, 1), num(r.burstGeneratorLagMs, 0)])
  }
  if (rttRows.length > 0) {
    out.push(`Ordinary QoS 1 publish -> QoS 1 subscriber, ${plan.rtt.count} at one per ${plan.rtt.intervalMs} ms (during the drain: one per 2 ms while it lasts)`, '')
    out.push(table(['while', 'received', 'p50 ms', 'p99 ms', 'max ms', 'generator lag ms'], rttRows), '')
  }
  const b = r.backlog
  if (b !== null) {
    out.push(`Backlog insertion: $delayed/3600/..., QoS 1, ${plan.backlogWindow} unacknowledged at a time, one client`, '')
    out.push(table(['acked', 'seconds', 'msg/s', 'PUBACK p50 ms', 'PUBACK p99 ms', 'broker RSS MB', 'data dir MB', 'SIGTERM to exit ms'], [[
      `${int(b.acked)}/${int(plan.backlog)}`, num(b.seconds, 2), int(b.msgPerSec), num(b.ack.p50, 1), num(b.ack.p99, 1), num(b.brokerRssMb), num(b.dataDirMb), int(b.stopMs)
    ]]), '')
  }
  if (r.startEmpty !== null && r.startWithBacklog !== null) {
    const row = (name: string, s: StartFigures): string[] => [name, int(Math.min(...s.startMs)), s.startMs.map((v) => int(v)).join(', '), num(s.rssMb)]
    out.push(`Startup: spawn of bench/fleetq-server.ts (node + tsx + broker) to its {"port"} line; RSS 1 s later`, '')
    out.push(table(['data dir', 'fastest ms', 'all ms', 'RSS MB'], [
      row('empty', r.startEmpty),
      row(`${int(b?.acked ?? 0)} pending`, r.startWithBacklog)
    ]), '')
  }
  const u = r.burst
  if (u !== null) {
    out.push(`Burst: ${int(u.messages)} delayed messages due at one instant (QoS 1 subscriber); drain = last arrival - due time`, '')
    out.push(table(['delivered', 'dup', 'inserted ms', 'margin ms', 'first ms', 'drain ms', 'drain msg/s'], [[
      `${int(u.delivered)}/${int(u.messages)}`, String(u.duplicates), int(u.insert.seconds * 1000), int(u.marginMs), num(u.firstMs, 1), int(u.drainMs), int(u.drainMsgPerSec)
    ]]))
    if (u.marginMs < 0) out.push('', 'warning: the burst was still being inserted at its due time; drain figures are not meaningful.')
  }
  return out.join('\n')
}

process.exitCode = await main(process.argv.slice(2))
