import { cpus, loadavg } from 'node:os'
import type { BenchOptions } from './options.js'
import type { ScenarioResult } from './runner.js'

export interface Environment {
  node: string
  cpus: number
  cpuModel: string
  /** 1-minute load average at the start: other work on the machine skews every figure. */
  loadAverage: number
  brokers: string[]
}

export function describeEnvironment (brokers: string[]): Environment {
  const list = cpus()
  return { node: process.version, cpus: list.length, cpuModel: list[0]?.model.trim() ?? 'unknown', loadAverage: loadavg()[0] ?? 0, brokers }
}

export function formatHeader (options: BenchOptions, env: Environment): string {
  return [
    `brokers: ${env.brokers.join(', ')}`,
    `load: ${options.messages} messages delivered per scenario, ${options.payload} B payload, ` +
      `${options.publishers} publishers (fan-in), ${options.subscribers} subscribers (fan-out), ` +
      `${options.inflight} in flight per publisher, mqtt.js 5 (MQTT 3.1.1, clean sessions)`,
    `machine: ${env.cpus} x ${env.cpuModel}, Node ${env.node}, load average ${env.loadAverage.toFixed(2)} at start`
  ].join('\n')
}

/** A Markdown table, so a run can be pasted into docs/benchmarks.md as it is. */
export function formatTable (results: readonly ScenarioResult[]): string {
  const header = ['scenario', 'broker', 'msg/s', 'p50 ms', 'p99 ms', 'RSS MB', 'CPU µs/msg', 'lost']
  const rows = results.map((r) => [
    r.scenario,
    r.broker,
    Math.round(r.msgPerSec).toLocaleString('en-US'),
    ms(r.p50Ms),
    ms(r.p99Ms),
    r.rssMb === null ? '-' : r.rssMb.toFixed(1),
    cpuPerMessage(r),
    lost(r)
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)))
  // Numbers right-aligned, names left-aligned.
  const align = (cells: string[]): string =>
    '| ' + cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ') + ' |'
  const rule = '| ' + widths.map((w, i) => (i < 2 ? '-'.repeat(w) : '-'.repeat(Math.max(w - 1, 1)) + ':')).join(' | ') + ' |'
  return [align(header), rule, ...rows.map(align)].join('\n')
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
  if (r.error !== null) notes.push(r.error)
  if (r.duplicates > 0) notes.push(`${r.duplicates} dup`)
  return notes.length === 0 ? String(r.lost) : `${r.lost} (${notes.join(', ')})`
}
