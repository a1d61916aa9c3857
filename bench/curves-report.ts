import type { CurveName } from './curves-options.js'
import { loadAverage, markdownTable } from './report.js'

/** One system at one point of one curve. */
export interface PointResult {
  curve: CurveName
  /** The value the curve varies (bytes, subscribers, tasks waiting, connections). */
  point: number
  /** `fleetq`, `mosquitto` or `bullmq`. */
  system: string
  /** When this point ran (ISO time) and the 1-minute load average then: fleetq is the tree as it was. */
  at: string
  loadAverage: number
  /** The figures, by metric key; null when not measured (no pid, nothing delivered). */
  values: Record<string, number | null>
  /** Lost messages, timeouts, errors, a queue not drained in time: shown in the table's last column. */
  notes: string[]
  /** Something was lost or failed (not merely slow): the command then exits with 1. */
  failed: boolean
}

/** A column pair of a curve's table: fleetq's figure and the baseline's, with their ratio if `ratio`. */
export interface Metric {
  key: string
  label: string
  /** Decimals shown; large values get thousands separators. */
  digits: number
  /** Show fleetq ÷ baseline after the two figures. */
  ratio: boolean
}

export function formatValue (value: number | null | undefined, digits: number): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/**
 * A curve as one Markdown table: a row per point, for each metric fleetq's
 * figure, the baseline's, and (for `ratio` metrics) fleetq ÷ baseline; the
 * points' time and load average last, so each row says what the machine was
 * doing.
 */
export function formatCurve (pointLabel: string, baseline: string, metrics: readonly Metric[], results: readonly PointResult[]): string {
  const points = [...new Set(results.map((r) => r.point))]
  const header = [pointLabel]
  for (const m of metrics) {
    header.push(`fleetq ${m.label}`, `${baseline} ${m.label}`)
    if (m.ratio) header.push('ratio')
  }
  header.push('UTC', 'load', 'notes')
  const rows = points.map((point) => {
    const fleetq = results.find((r) => r.point === point && r.system === 'fleetq')
    const base = results.find((r) => r.point === point && r.system === baseline)
    const row = [point.toLocaleString('en-US')]
    for (const m of metrics) {
      const a = fleetq?.values[m.key] ?? null
      const b = base?.values[m.key] ?? null
      row.push(formatValue(a, m.digits), formatValue(b, m.digits))
      if (m.ratio) row.push(a === null || b === null || b === 0 ? '-' : `${(a / b).toFixed(2)}×`)
    }
    const first = fleetq ?? base
    row.push(first === undefined ? '-' : first.at.slice(11, 16), first === undefined ? '-' : first.loadAverage.toFixed(2))
    const notes = [...(fleetq?.notes ?? []).map((n) => `fleetq: ${n}`), ...(base?.notes ?? []).map((n) => `${baseline}: ${n}`)]
    row.push(notes.join('; '))
    return row
  })
  return markdownTable(header, rows, 1)
}

/** A point's timestamp and load average, taken as it starts. */
export function stamp (): { at: string, loadAverage: number } {
  return { at: new Date().toISOString(), loadAverage: loadAverage() }
}
