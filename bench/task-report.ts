import { readFileSync } from 'node:fs'
import type { TaskBenchOptions } from './task-options.js'
import type { TaskRunResult } from './task-run.js'
import { fleetqCounterpart } from './task-systems.js'

export interface TaskEnvironment {
  node: string
  cpus: number
  cpuModel: string
  bullmq: string
  redis: string
  /** 1-, 5- and 15-minute load averages: other work on this shared machine moves every figure. */
  loadStart: number[]
  loadEnd: number[]
}

export function bullmqVersion (): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../node_modules/bullmq/package.json', import.meta.url), 'utf8')) as { version?: string }
    return pkg.version ?? 'unknown'
  } catch {
    return 'not installed'
  }
}

export function formatLoad (load: number[]): string {
  return load.map((l) => l.toFixed(2)).join(', ')
}

export function formatTaskHeader (options: TaskBenchOptions, env: TaskEnvironment): string {
  const pace = options.rate > 0 ? `a steady ${options.rate} tasks/s for ${options.tasks / options.rate} s` : 'as fast as the window allows'
  const pending = options.maxPending > 0 ? `at most ${options.maxPending} not completed` : 'no bound on tasks not completed'
  return [
    `systems: ${options.systems.join(', ')}; ${options.rounds} round(s), alternating`,
    `shape: ${options.tasks} tasks, 1 producer process (${pace}; ${options.window} submits awaiting acknowledgement, ${pending}), ` +
      `${options.workers} worker processes x concurrency ${options.concurrency}, no-op handler; ${options.warmup} warm-up tasks per run unreported`,
    `machine: ${env.cpus} x ${env.cpuModel}, Node ${env.node}, BullMQ ${env.bullmq}, Redis ${env.redis}`,
    `load average at start: ${formatLoad(env.loadStart)}`
  ].join('\n')
}

/** One row per run, as Markdown, so a run can be pasted into docs/benchmarks.md. */
export function formatTaskTable (results: readonly TaskRunResult[]): string {
  const header = ['system', 'submit', 'tasks/s', 'submits/s', 'p50 ms', 'p99 ms', 'max ms', 'broker CPU µs/task', 'worker CPU µs/task', 'producer CPU µs/task', 'broker RSS MB', 'worker RSS MB', 'completed']
  const rows = results.map((r) => [
    r.system,
    r.submitCall,
    count(r.tasksPerSec),
    count(r.submitsPerSec),
    ms(r.p50Ms),
    ms(r.p99Ms),
    ms(r.maxMs),
    r.serverCpuUs === null ? '-' : count(r.serverCpuUs),
    r.workerCpuUs === null ? '-' : count(r.workerCpuUs),
    r.producerCpuUs === null ? '-' : count(r.producerCpuUs),
    r.serverRssMb === null ? '-' : r.serverRssMb.toFixed(1),
    r.workerRssMb === null ? '-' : r.workerRssMb.toFixed(1),
    completion(r)
  ])
  return markdown(header, rows, 2)
}

type Metric = 'tasksPerSec' | 'p50Ms' | 'p99Ms' | 'serverCpuUs' | 'workerCpuUs' | 'producerCpuUs' | 'serverRssMb'
const ratioMetrics: Array<[Metric, string]> = [
  ['tasksPerSec', 'tasks/s'], ['p50Ms', 'p50'], ['p99Ms', 'p99'], ['serverCpuUs', 'broker CPU/task'],
  ['workerCpuUs', 'worker CPU/task'], ['producerCpuUs', 'producer CPU/task'], ['serverRssMb', 'broker RSS']
]

export interface TaskRatio {
  fleetq: string
  other: string
  /** fleetq's mean over the rounds divided by the other system's; null where either is unknown. */
  ratios: Partial<Record<Metric, number | null>>
}

/** fleetq ÷ each other system, means over the rounds, each against the fleetq run that submits the same way. */
export function taskRatios (results: readonly TaskRunResult[]): TaskRatio[] {
  const systems = [...new Set(results.map((r) => r.system))].filter((s) => !s.startsWith('fleetq'))
  const out: TaskRatio[] = []
  for (const other of systems) {
    const fleetq = fleetqCounterpart(other)
    const mine = results.filter((r) => r.system === fleetq && r.error === null)
    const theirs = results.filter((r) => r.system === other && r.error === null)
    if (mine.length === 0 || theirs.length === 0) continue
    const ratios: TaskRatio['ratios'] = {}
    for (const [metric] of ratioMetrics) {
      const a = mean(mine.map((r) => r[metric]))
      const b = mean(theirs.map((r) => r[metric]))
      ratios[metric] = a === null || b === null || b === 0 ? null : a / b
    }
    out.push({ fleetq, other, ratios })
  }
  return out
}

export function formatRatioTable (ratios: readonly TaskRatio[]): string {
  if (ratios.length === 0) return ''
  const header = ['ratio', ...ratioMetrics.map(([, label]) => label)]
  const rows = ratios.map((r) => [`${r.fleetq} / ${r.other}`, ...ratioMetrics.map(([metric]) => {
    const value = r.ratios[metric]
    return value === null || value === undefined ? '-' : `${value.toFixed(2)}×`
  })])
  return markdown(header, rows, 1)
}

/** Where the warnings apply: a run that did not finish, or a producer whose own stalls inflate its latencies. */
export function formatTaskWarnings (results: readonly TaskRunResult[]): string {
  const lines: string[] = []
  for (const r of results) {
    if (r.error !== null) lines.push(`warning: ${r.system} (round ${r.round}): ${r.error}`)
    if (r.producerLoopDelayMaxMs >= 100) lines.push(`warning: ${r.system} (round ${r.round}): the producer's event loop stalled for up to ${Math.round(r.producerLoopDelayMaxMs)} ms; its p99 includes that`)
  }
  return lines.join('\n')
}

function mean (values: Array<number | null>): number | null {
  const known = values.filter((v): v is number => v !== null)
  return known.length === 0 || known.length < values.length ? null : known.reduce((a, b) => a + b, 0) / known.length
}

function completion (r: TaskRunResult): string {
  const notes = [r.failed > 0 ? `${r.failed} failed` : '', r.error !== null ? 'stopped early' : ''].filter((n) => n !== '')
  return `${r.completed}/${r.tasks}${notes.length === 0 ? '' : ` (${notes.join(', ')})`}`
}

function count (n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

function ms (value: number | null): string {
  if (value === null) return '-'
  return value < 10 ? value.toFixed(2) : value.toFixed(1)
}

/** A Markdown table: the first `names` columns left-aligned, numbers right-aligned. */
function markdown (header: string[], rows: string[][], names: number): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]?.length ?? 0)))
  const align = (cells: string[]): string =>
    '| ' + cells.map((c, i) => (i < names ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ') + ' |'
  const rule = '| ' + widths.map((w, i) => (i < names ? '-'.repeat(w) : '-'.repeat(Math.max(w - 1, 1)) + ':')).join(' | ') + ' |'
  return [align(header), rule, ...rows.map(align)].join('\n')
}
