// The payload and subscriber curves of bench/curves.ts: one mqload run per
// point per broker (bench/mqload-runner.ts), fleetq and Mosquitto taking turns.
import type { BenchTarget } from './brokers.js'
import { PAYLOAD_BUDGET_BYTES, type CurvesOptions } from './curves-options.js'
import type { Metric, PointResult } from './curves-report.js'
import { stamp } from './curves-report.js'
import { runMqloadScenario } from './mqload-runner.js'
import { runMqload } from './mqload.js'
import type { ScenarioResult, Settings } from './runner.js'
import { findScenario } from './scenarios.js'

export type MessagingCurve = 'payload' | 'subscribers'

export const messagingMetrics: Readonly<Record<MessagingCurve, readonly Metric[]>> = {
  payload: [
    { key: 'msgPerSec', label: 'msg/s', digits: 0, ratio: true },
    { key: 'mibPerSec', label: 'MiB/s', digits: 1, ratio: false },
    { key: 'p99Ms', label: 'p99 ms', digits: 1, ratio: true },
    { key: 'rssMb', label: 'RSS MB', digits: 1, ratio: false },
    { key: 'cpuUsPerMsg', label: 'CPU µs/msg', digits: 0, ratio: true }
  ],
  subscribers: [
    { key: 'msgPerSec', label: 'deliveries/s', digits: 0, ratio: true },
    { key: 'p99Ms', label: 'p99 ms', digits: 1, ratio: true },
    { key: 'rssMb', label: 'RSS MB', digits: 1, ratio: false },
    { key: 'cpuUsPerMsg', label: 'CPU µs/delivery', digits: 0, ratio: true }
  ]
}

/**
 * The mqload scenario and settings of one point. Payload: the fan-in of
 * `bench --compare` (`--publishers` → 1), `--messages` deliveries but at
 * most 256 MiB of payload. Subscribers: one publisher, N subscribers on its
 * topic, `--messages` deliveries in all (so 1,000 subscribers get 20
 * publishes each by default).
 */
export function pointSettings (curve: MessagingCurve, point: number, o: CurvesOptions): { scenario: string, settings: Settings } {
  if (curve === 'payload') {
    return {
      scenario: `qos${o.qos}-fanin`,
      settings: { messages: Math.max(o.publishers, Math.min(o.messages, Math.floor(PAYLOAD_BUDGET_BYTES / point))), publishers: o.publishers, subscribers: 1, payload: point, inflight: o.inflight, timeout: o.timeout }
    }
  }
  return {
    scenario: `qos${o.qos}-fanout`,
    settings: { messages: Math.max(o.messages, point), publishers: 1, subscribers: point, payload: 64, inflight: o.inflight, timeout: o.timeout }
  }
}

/** Warm-up per broker before a curve, so V8 has compiled fleetq's hot paths (as `bench --warmup`). */
const WARMUP_MESSAGES = 2_500

export async function warmUp (target: BenchTarget, runId: string): Promise<void> {
  const { hostname, port } = new URL(target.url)
  await runMqload({ host: hostname, port: Number(port), pubs: 4, subs: 1, qos: 1, msgs: WARMUP_MESSAGES, topic: `fleetq-curves/${runId}/warmup`, timeout: 60 })
}

/**
 * Runs every point on every target, the targets taking turns within a point
 * and the order flipping from one point to the next, so a machine that gets
 * busier during the curve does not always hit the same broker.
 */
export async function runMessagingCurve (curve: MessagingCurve, points: readonly number[], targets: readonly BenchTarget[], o: CurvesOptions,
  progress: (line: string) => void, signal?: AbortSignal): Promise<PointResult[]> {
  const runId = Date.now().toString(36)
  for (const target of targets) await warmUp(target, runId)
  const results: PointResult[] = []
  for (const [index, point] of points.entries()) {
    const { scenario, settings } = pointSettings(curve, point, o)
    const order = index % 2 === 0 ? targets : [...targets].reverse()
    for (const target of order) {
      const when = stamp()
      let run: ScenarioResult
      try {
        run = await runMqloadScenario(target, findScenario(scenario), settings, `${runId}/${curve}`, point, signal)
      } catch (err) {
        results.push({ curve, point, system: target.name, ...when, values: {}, notes: [firstLine(err)], failed: true })
        progress(`  ${curve} ${point} ${target.name}: failed: ${firstLine(err)}`)
        continue
      }
      const result = toPoint(curve, point, run, when)
      results.push(result)
      progress(`  ${curve} ${point} ${target.name}: ${Math.round(run.msgPerSec)} msg/s, p99 ${run.p99Ms?.toFixed(1) ?? '-'} ms${result.notes.length > 0 ? ` (${result.notes.join(', ')})` : ''}`)
    }
  }
  return results
}

export function toPoint (curve: MessagingCurve, point: number, run: ScenarioResult, when: { at: string, loadAverage: number }): PointResult {
  const notes: string[] = []
  if (run.lost > 0) notes.push(`${run.lost} of ${run.expected} lost${run.timedOut ? ' (timeout)' : ''}`)
  if (run.duplicates > 0) notes.push(`${run.duplicates} dups`)
  if (run.error !== null) notes.push(run.error)
  const payload = curve === 'payload' ? point : 64
  return {
    curve,
    point,
    system: run.broker,
    ...when,
    values: {
      msgPerSec: run.msgPerSec,
      mibPerSec: run.msgPerSec * payload / 2 ** 20,
      p50Ms: run.p50Ms,
      p99Ms: run.p99Ms,
      rssMb: run.rssMb,
      cpuUsPerMsg: run.cpuSeconds === null || run.delivered === 0 ? null : run.cpuSeconds * 1e6 / run.delivered,
      delivered: run.delivered,
      seconds: run.seconds
    },
    notes,
    failed: notes.length > 0
  }
}

export function firstLine (err: unknown): string {
  let text = err instanceof Error ? err.message : String(err)
  // runMqload's errors start with the whole command line; its reason is what a table needs.
  const failed = /^mqload .*? (failed \(.*)$/s.exec(text)
  if (failed?.[1] !== undefined) text = `mqload ${failed[1]}`
  const line = text.split('\n')[0] ?? text
  return line.length > 120 ? `${line.slice(0, 117)}...` : line
}
