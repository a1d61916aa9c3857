// Latency at a steady rate and event-loop stalls: one publisher → one
// subscriber at 1,000 msg/s (mqload --rate), QoS 0 and QoS 1, fleetq and
// Mosquitto side by side, brokers taking turns. The load comes from mqload
// (C, its own process); fleetq runs as bench/latency-stalls-server.ts, which
// counts every turn of a 1 ms timer late by more than --stall-ms and, from
// Linux schedstat, whether fleetq's main thread was running (its own stall)
// or waiting for a CPU (the machine's). For both brokers the run-queue wait
// of their threads shows how busy the machine was during the run.
// Usage: npm run bench:latency -- [--seconds 60] [--rate 1000] [--qos 0|1|both] [--rounds 1] [--slow-ms 5] [--stall-ms 5] [--json]
import { parseArgs } from 'node:util'
import type { BenchTarget } from './brokers.js'
import { readSchedMs, startStallTarget, type StallReport, type StallTarget } from './latency-target.js'
import { startMosquitto } from './mosquitto.js'
import { ensureMqload, runMqload, type MqloadResult } from './mqload.js'
import { loadAverage } from './report.js'
import { readCpuSeconds, readRssBytes } from './stats.js'

const usage = `Usage: npm run bench:latency -- [options]

  --seconds <s>        length of each measured run (default 60, as the goal is stated)
  --rate <msg/s>       steady publish rate (default 1000)
  --qos <0|1|both>     (default both)
  --rounds <n>         runs per broker and QoS, brokers taking turns (default 1)
  --slow-ms <ms>       a delivery slower than this counts as slow (default 5)
  --stall-ms <ms>      fleetq's event loop late by more than this is a stall (default 5)
  --brokers <a,b>      fleetq, mosquitto (default both)
  --persistence <kind> level | memory, for fleetq (default level)
  --json               print the results as JSON on stdout
`

interface LatencyRow {
  broker: string
  qos: 0 | 1
  round: number
  sent: number
  received: number
  missing: number
  p50Ms: number
  p99Ms: number
  p999Ms: number
  maxMs: number
  /** Deliveries slower than slowMs. */
  slow: number
  cpuUsPerMsg: number | null
  rssMb: number | null
  /** fleetq only: its own event loop during the run (bench/latency-stalls-server.ts). */
  loop: LoopFigures | null
  /**
   * Time the broker's threads were runnable but waiting for a CPU, per
   * second of the run (Linux schedstat): how busy the machine was, for
   * either broker. Tens of ms/s mean the figures measure the machine too.
   */
  runQueueMsPerS: number | null
  loadAverage: number
}

/** fleetq's event loop in one run, from the 1 ms timer of bench/latency-stalls-server.ts. */
interface LoopFigures {
  /** Turns late by more than --stall-ms: counted, not estimated. */
  stalls: number
  /** Of those, the ones where fleetq's main thread ran more than it waited for a CPU: fleetq's own. */
  ownStalls: number
  /** Of those, the ones a garbage collection overlapped. */
  gcStalls: number
  maxLateMs: number
  gcPauses: number
  gcMaxMs: number
  /** LevelDB batches slower than 1 ms (a QoS 1 delivery waits for one). */
  slowBatches: number
  batches: number
}

function parse (argv: string[]): { seconds: number, rate: number, qos: Array<0 | 1>, rounds: number, slowMs: number, stallMs: number, brokers: string[], persistence: 'level' | 'memory', json: boolean } | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      seconds: { type: 'string', default: '60' },
      rate: { type: 'string', default: '1000' },
      qos: { type: 'string', default: 'both' },
      rounds: { type: 'string', default: '1' },
      'slow-ms': { type: 'string', default: '5' },
      'stall-ms': { type: 'string', default: '5' },
      brokers: { type: 'string', default: 'fleetq,mosquitto' },
      persistence: { type: 'string', default: 'level' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) return null
  const positive = (flag: string, raw: string, max: number): number => {
    const n = Number(raw)
    if (!Number.isFinite(n) || n <= 0 || n > max) throw new Error(`--${flag}: must be a number above 0 and at most ${max}, got "${raw}"`)
    return n
  }
  const qos = values.qos === 'both' ? [0, 1] as Array<0 | 1> : values.qos === '0' ? [0] as Array<0 | 1> : values.qos === '1' ? [1] as Array<0 | 1> : null
  if (qos === null) throw new Error(`--qos: must be 0, 1 or both, got "${values.qos}"`)
  const brokers = values.brokers.split(',').map((b) => b.trim())
  for (const b of brokers) if (b !== 'fleetq' && b !== 'mosquitto') throw new Error(`--brokers: unknown broker "${b}"`)
  if (values.persistence !== 'level' && values.persistence !== 'memory') throw new Error(`--persistence: must be level or memory, got "${values.persistence}"`)
  return {
    seconds: positive('seconds', values.seconds, 3_600),
    rate: positive('rate', values.rate, 1_000_000),
    qos,
    rounds: Math.round(positive('rounds', values.rounds, 100)),
    slowMs: positive('slow-ms', values['slow-ms'], 60_000),
    stallMs: positive('stall-ms', values['stall-ms'], 60_000),
    brokers,
    persistence: values.persistence,
    json: values.json
  }
}

async function measure (target: BenchTarget | StallTarget, qos: 0 | 1, round: number, o: { seconds: number, rate: number, slowMs: number }, runId: string): Promise<LatencyRow> {
  const { hostname, port } = new URL(target.url)
  const msgs = Math.max(1, Math.round(o.seconds * o.rate))
  const stallTarget = 'report' in target ? target : null
  await stallTarget?.reset()
  const cpuBefore = target.pid === null ? null : readCpuSeconds(target.pid)
  const schedBefore = target.pid === null ? null : readSchedMs(target.pid)
  const started = performance.now()
  const result: MqloadResult = await runMqload({
    host: hostname, port: Number(port), pubs: 1, subs: 1, qos, msgs, rate: o.rate, slowMs: o.slowMs,
    timeout: o.seconds + 30, topic: `fleetq-latency/${runId}/${qos}/${round}`
  })
  const elapsedS = (performance.now() - started) / 1000
  const cpuAfter = target.pid === null ? null : readCpuSeconds(target.pid)
  const schedAfter = target.pid === null ? null : readSchedMs(target.pid)
  const loop = stallTarget === null ? null : loopFigures(await stallTarget.report())
  const rss = target.pid === null ? null : readRssBytes(target.pid)
  return {
    broker: target.name,
    qos,
    round,
    sent: msgs,
    received: result.received,
    missing: result.missing,
    p50Ms: result.p50_ms,
    p99Ms: result.p99_ms,
    p999Ms: result.p999_ms,
    maxMs: result.max_ms,
    slow: result.slow,
    cpuUsPerMsg: cpuBefore === null || cpuAfter === null || result.received === 0 ? null : (cpuAfter - cpuBefore) * 1e6 / result.received,
    rssMb: rss === null ? null : rss / 1024 / 1024,
    loop,
    runQueueMsPerS: schedBefore === null || schedAfter === null ? null : (schedAfter.waitMs - schedBefore.waitMs) / elapsedS,
    loadAverage: loadAverage()
  }
}

function loopFigures (r: StallReport): LoopFigures {
  const overlapsGc = (s: StallReport['stalls'][number]): boolean => r.gcs.some((g) => g.atMs < s.atMs + s.lateMs && g.atMs + g.ms > s.atMs)
  const over1ms = r.writes.find((w) => w.le === 0.001)
  const batches = r.writes.at(-1)?.count ?? 0
  return {
    stalls: r.stalls.length,
    ownStalls: r.stalls.filter((s) => s.runMs >= s.waitMs).length,
    gcStalls: r.stalls.filter(overlapsGc).length,
    maxLateMs: r.stalls.reduce((m, s) => Math.max(m, s.lateMs), 0),
    gcPauses: r.gcs.length,
    gcMaxMs: r.gcs.reduce((m, g) => Math.max(m, g.ms), 0),
    slowBatches: over1ms === undefined ? 0 : batches - over1ms.count,
    batches
  }
}

function formatRows (rows: readonly LatencyRow[], slowMs: number, stallMs: number): string {
  const header = ['broker', 'QoS', 'round', 'received', 'p50 ms', 'p99 ms', 'p99.9 ms', 'max ms', `> ${slowMs} ms`, 'CPU µs/msg', 'RSS MB',
    `loop stalls > ${stallMs} ms`, 'own', 'with GC', 'loop late max ms', 'GC pauses / max ms', 'LevelDB batches > 1 ms', 'run-queue wait ms/s', 'load']
  const cells = rows.map((r) => [
    r.broker, String(r.qos), String(r.round), `${r.received}/${r.sent}`, r.p50Ms.toFixed(2), r.p99Ms.toFixed(2), r.p999Ms.toFixed(2), r.maxMs.toFixed(1),
    String(r.slow), r.cpuUsPerMsg === null ? '-' : Math.round(r.cpuUsPerMsg).toString(), r.rssMb === null ? '-' : r.rssMb.toFixed(1),
    r.loop === null ? '-' : String(r.loop.stalls), r.loop === null ? '-' : String(r.loop.ownStalls), r.loop === null ? '-' : String(r.loop.gcStalls),
    r.loop === null ? '-' : r.loop.maxLateMs.toFixed(1), r.loop === null ? '-' : `${r.loop.gcPauses} / ${r.loop.gcMaxMs.toFixed(1)}`,
    r.loop === null ? '-' : `${r.loop.slowBatches}/${r.loop.batches}`,
    r.runQueueMsPerS === null ? '-' : r.runQueueMsPerS.toFixed(1),
    r.loadAverage.toFixed(2)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]?.length ?? 0)))
  const line = (c: string[]): string => '| ' + c.map((x, i) => (i === 0 ? x.padEnd(widths[i] ?? 0) : x.padStart(widths[i] ?? 0))).join(' | ') + ' |'
  return [line(header), '| ' + widths.map((w, i) => (i === 0 ? '-'.repeat(w) : '-'.repeat(w - 1) + ':')).join(' | ') + ' |', ...cells.map(line)].join('\n')
}

/** p99 of fleetq over Mosquitto's per QoS (medians over rounds). */
function formatRatios (rows: readonly LatencyRow[]): string {
  const med = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m] as number : ((s[m - 1] as number) + (s[m] as number)) / 2 }
  const lines: string[] = []
  for (const qos of [0, 1] as const) {
    const f = rows.filter((r) => r.qos === qos && r.broker === 'fleetq')
    const m = rows.filter((r) => r.qos === qos && r.broker === 'mosquitto')
    if (f.length === 0 || m.length === 0) continue
    const fp = med(f.map((r) => r.p99Ms))
    const mp = med(m.map((r) => r.p99Ms))
    const stalls = f.reduce((s, r) => s + (r.loop?.stalls ?? 0), 0)
    const own = f.reduce((s, r) => s + (r.loop?.ownStalls ?? 0), 0)
    lines.push(`QoS ${qos}: p99 fleetq ${fp.toFixed(2)} ms, mosquitto ${mp.toFixed(2)} ms (${(fp / mp).toFixed(1)}×); slow deliveries fleetq ${f.reduce((s, r) => s + r.slow, 0)}, mosquitto ${m.reduce((s, r) => s + r.slow, 0)}; ` +
      `fleetq's loop stalled ${stalls} times, ${own} of them with its main thread running (the rest waiting for a CPU)`)
  }
  return lines.join('\n')
}

async function main (argv: string[]): Promise<number> {
  let o: ReturnType<typeof parse>
  try {
    o = parse(argv)
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`)
    return 2
  }
  if (o === null) {
    process.stdout.write(usage)
    return 0
  }
  const options = o
  await ensureMqload()
  const targets: BenchTarget[] = []
  const closeAll = (): Promise<unknown> => Promise.allSettled(targets.map((t) => t.close()))
  const onSignal = (): void => { void closeAll().finally(() => process.exit(130)) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const loadStart = loadAverage()
  const progress = (line: string): void => { process.stderr.write(line + '\n') }
  try {
    for (const name of options.brokers) {
      targets.push(name === 'fleetq' ? await startStallTarget({ persistence: options.persistence, stallMs: options.stallMs }) : await startMosquitto())
    }
    const runId = Date.now().toString(36)
    for (const target of targets) {
      // Unreported: V8 compiles fleetq's hot paths, LevelDB opens its files.
      progress(`warm-up on ${target.name}`)
      const { hostname, port } = new URL(target.url)
      await runMqload({ host: hostname, port: Number(port), pubs: 1, subs: 1, qos: 1, msgs: 5_000, topic: `fleetq-latency/${runId}/warm` })
    }
    const rows: LatencyRow[] = []
    for (const qos of options.qos) {
      for (let round = 1; round <= options.rounds; round++) {
        for (const target of targets) {
          progress(`QoS ${qos} on ${target.name}, round ${round}: ${options.seconds} s at ${options.rate} msg/s ...`)
          const row = await measure(target, qos, round, options, runId)
          progress(`  p50 ${row.p50Ms.toFixed(2)} ms, p99 ${row.p99Ms.toFixed(2)} ms, max ${row.maxMs.toFixed(1)} ms, ${row.slow} slower than ${options.slowMs} ms` +
            (row.loop === null ? '' : `; loop stalls ${row.loop.stalls} (${row.loop.ownStalls} own, ${row.loop.gcStalls} with GC)`) +
            (row.runQueueMsPerS === null ? '' : `; run-queue wait ${row.runQueueMsPerS.toFixed(1)} ms/s`))
          rows.push(row)
        }
      }
    }
    const loadEnd = loadAverage()
    if (options.json) {
      process.stdout.write(JSON.stringify({ options, loadAverage: { start: loadStart, end: loadEnd }, node: process.version, rows }, null, 2) + '\n')
    } else {
      process.stdout.write(`\none publisher → one subscriber, ${options.rate} msg/s for ${options.seconds} s per run, mqload (C, libmosquitto); ` +
        `load average ${loadStart.toFixed(2)} at start, ${loadEnd.toFixed(2)} at end\n\n${formatRows(rows, options.slowMs, options.stallMs)}\n\n${formatRatios(rows)}\n`)
    }
    return rows.every((r) => r.missing === 0) ? 0 : 1
  } catch (err) {
    process.stderr.write(`bench:latency failed: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  } finally {
    await closeAll()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

process.exitCode = await main(process.argv.slice(2))
