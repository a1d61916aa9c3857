import { cpus, loadavg } from 'node:os'
import type { BenchOptions } from './options.js'
import type { ScenarioResult } from './runner.js'

export interface Environment {
  node: string
  cpus: number
  cpuModel: string
  /** 1-minute load average at the start: other work on the machine skews every figure. */
  loadAverage: number
  /** 1-minute load average at the end; null until the runs are done. */
  loadAverageEnd: number | null
  brokers: string[]
}

export function describeEnvironment (brokers: string[]): Environment {
  const list = cpus()
  return { node: process.version, cpus: list.length, cpuModel: list[0]?.model.trim() ?? 'unknown', loadAverage: loadAverage(), loadAverageEnd: null, brokers }
}

/** The 1-minute load average, as `uptime` shows it. */
export function loadAverage (): number {
  return loadavg()[0] ?? 0
}

const generatorNames = {
  mqload: 'mqload (C, libmosquitto, one thread per client; MQTT 3.1.1, clean sessions)',
  mqttjs: 'mqtt.js 5 in one process (MQTT 3.1.1, clean sessions)'
}

export function formatHeader (options: BenchOptions, env: Environment): string {
  const load = `load average ${env.loadAverage.toFixed(2)} at start` + (env.loadAverageEnd === null ? '' : `, ${env.loadAverageEnd.toFixed(2)} at end`)
  return [
    `brokers: ${env.brokers.join(', ')}`,
    `load: ${options.messages} messages delivered per scenario, ${options.payload} B payload, ` +
      `${options.publishers} publishers (fan-in), ${options.subscribers} subscribers (fan-out), ` +
      `${options.inflight} in flight per publisher, ${options.rounds} round${options.rounds === 1 ? '' : 's'}, generator ${generatorNames[options.generator]}`,
    `machine: ${env.cpus} x ${env.cpuModel}, Node ${env.node}, ${load}`
  ].join('\n')
}

/** Median of each (scenario, broker) over its rounds, and its ratio to Mosquitto's. */
export interface SummaryRow {
  scenario: string
  broker: string
  rounds: number
  msgPerSec: number
  p50Ms: number | null
  p99Ms: number | null
  /** Largest peak over the rounds. */
  rssMb: number | null
  cpuUsPerMsg: number | null
  lost: number
  duplicates: number
  /** msg/s of this broker over Mosquitto's in the same scenario (medians); null without a Mosquitto row. */
  ratio: number | null
}

export function summarise (results: readonly ScenarioResult[]): SummaryRow[] {
  const groups = new Map<string, ScenarioResult[]>()
  for (const r of results) {
    const key = `${r.scenario}\u0000${r.broker}`
    groups.set(key, [...(groups.get(key) ?? []), r])
  }
  const rows: SummaryRow[] = [...groups.values()].map((runs) => {
    const first = runs[0] as ScenarioResult
    const cpu = runs.filter((r) => r.cpuSeconds !== null && r.delivered > 0).map((r) => (r.cpuSeconds as number) * 1e6 / r.delivered)
    const rss = runs.flatMap((r) => (r.rssMb === null ? [] : [r.rssMb]))
    return {
      scenario: first.scenario,
      broker: first.broker,
      rounds: runs.length,
      msgPerSec: median(runs.map((r) => r.msgPerSec)) ?? 0,
      p50Ms: median(runs.flatMap((r) => (r.p50Ms === null ? [] : [r.p50Ms]))),
      p99Ms: median(runs.flatMap((r) => (r.p99Ms === null ? [] : [r.p99Ms]))),
      rssMb: rss.length === 0 ? null : Math.max(...rss),
      cpuUsPerMsg: median(cpu),
      lost: runs.reduce((sum, r) => sum + r.lost, 0),
      duplicates: runs.reduce((sum, r) => sum + r.duplicates, 0),
      ratio: null
    }
  })
  for (const row of rows) {
    const anchor = rows.find((r) => r.scenario === row.scenario && r.broker === 'mosquitto')
    if (anchor !== undefined && row.broker !== 'mosquitto' && anchor.msgPerSec > 0) row.ratio = row.msgPerSec / anchor.msgPerSec
  }
  return rows
}

export function median (values: readonly number[]): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** The medians with the ratio to Mosquitto, as a Markdown table. */
export function formatSummary (rows: readonly SummaryRow[]): string {
  const header = ['scenario', 'broker', 'msg/s (median)', 'vs mosquitto', 'p50 ms', 'p99 ms', 'RSS MB', 'CPU µs/msg', 'lost', 'dups']
  return markdownTable(header, rows.map((r) => [
    r.scenario,
    r.broker,
    Math.round(r.msgPerSec).toLocaleString('en-US'),
    r.ratio === null ? '' : `${r.ratio.toFixed(2)}×`,
    ms(r.p50Ms),
    ms(r.p99Ms),
    r.rssMb === null ? '-' : r.rssMb.toFixed(1),
    r.cpuUsPerMsg === null ? '-' : Math.round(r.cpuUsPerMsg).toLocaleString('en-US'),
    String(r.lost),
    String(r.duplicates)
  ]))
}

/** Numbers right-aligned, the first `names` (name) columns left-aligned. */
export function markdownTable (header: string[], rows: string[][], names = 2): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)))
  const align = (cells: string[]): string =>
    '| ' + cells.map((c, i) => (i < names ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ') + ' |'
  const rule = '| ' + widths.map((w, i) => (i < names ? '-'.repeat(w) : '-'.repeat(Math.max(w - 1, 1)) + ':')).join(' | ') + ' |'
  return [align(header), rule, ...rows.map(align)].join('\n')
}

/** A Markdown table, so a run can be pasted into docs/benchmarks.md as it is. */
export function formatTable (results: readonly ScenarioResult[]): string {
  const rounds = results.some((r) => r.round > 1)
  const header = ['scenario', 'broker', ...(rounds ? ['round'] : []), 'msg/s', 'p50 ms', 'p99 ms', 'max ms', 'RSS MB', 'CPU µs/msg', 'lost']
  return markdownTable(header, results.map((r) => [
    r.scenario,
    r.broker,
    ...(rounds ? [String(r.round)] : []),
    Math.round(r.msgPerSec).toLocaleString('en-US'),
    ms(r.p50Ms),
    ms(r.p99Ms),
    ms(r.maxMs),
    r.rssMb === null ? '-' : r.rssMb.toFixed(1),
    cpuPerMessage(r),
    lost(r)
  ]))
}

/** Above this, a generator stall is no longer noise next to broker latency. */
const LAG_WARN_MS = 100

/** A warning when the load generator itself was stalled, or '' when it was not. */
export function formatWarnings (results: readonly ScenarioResult[]): string {
  const worst = results.reduce((max, r) => Math.max(max, r.generatorLagMs), 0)
  if (worst < LAG_WARN_MS) return ''
  const affected = results.filter((r) => r.generatorLagMs >= LAG_WARN_MS).map((r) => `${r.scenario}/${r.broker}`)
  return `warning: the load generator's event loop stalled for up to ${Math.round(worst)} ms (${affected.join(', ')}); ` +
    'the machine was busy and p99 latencies include those stalls.'
}

function ms (value: number | null): string {
  if (value === null) return '-'
  return value < 10 ? value.toFixed(2) : value.toFixed(1)
}

/** Broker CPU time per delivered message, µs: steadier than msg/s on a shared machine. */
function cpuPerMessage (r: ScenarioResult): string {
  if (r.cpuSeconds === null || r.delivered === 0) return '-'
  return Math.round(r.cpuSeconds * 1e6 / r.delivered).toLocaleString('en-US')
}

function lost (r: ScenarioResult): string {
  const notes: string[] = []
  if (r.timedOut) notes.push('timeout')
  // Bounded: a failed mqload command line would widen the whole table.
  if (r.error !== null) notes.push(r.error.length > 60 ? r.error.slice(0, 57) + '...' : r.error)
  if (r.duplicates > 0) notes.push(`${r.duplicates} dup`)
  return notes.length === 0 ? String(r.lost) : `${r.lost} (${notes.join(', ')})`
}
