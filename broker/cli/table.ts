/**
 * Plain-text output of the admin commands (docs/operations.md "Command
 * line"): aligned columns and human units. No colours, so what a terminal
 * shows is what a pipe gets.
 */

export type Align = 'left' | 'right'

export interface Column {
  header: string
  /** Numbers read best right-aligned. @defaultValue 'left' */
  align?: Align
}

/** Rows under their headers, two spaces between columns, no trailing blanks. */
export function formatTable (columns: readonly Column[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = columns.map((column, i) => Math.max(width(column.header), ...rows.map((row) => width(row[i] ?? ''))))
  const line = (cells: readonly string[]): string =>
    columns.map((column, i) => pad(cells[i] ?? '', widths[i]!, column.align ?? 'left')).join('  ').trimEnd()
  return [line(columns.map((c) => c.header)), ...rows.map(line)].join('\n')
}

/** `label  value` lines, labels padded to one width: one object's fields. */
export function formatFields (fields: ReadonlyArray<readonly [label: string, value: string]>): string {
  const labelWidth = Math.max(...fields.map(([label]) => width(label)))
  return fields.map(([label, value]) => `${pad(label, labelWidth, 'left')}  ${value}`.trimEnd()).join('\n')
}

/** A duration as its two largest units: `850ms`, `42s`, `3m 12s`, `5h 3m`, `2d 4h`. */
export function formatDuration (ms: number): string {
  if (!Number.isFinite(ms)) return '-'
  const abs = Math.abs(ms)
  if (abs < 1000) return `${Math.round(abs)}ms`
  const units: Array<[string, number]> = [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]]
  let rest = Math.floor(abs / 1000)
  const parts: string[] = []
  for (const [unit, seconds] of units) {
    const n = Math.floor(rest / seconds)
    rest -= n * seconds
    if (n > 0 || parts.length > 0) parts.push(`${n}${unit}`)
    if (parts.length === 2) break
  }
  // `3m 0s` says as much as `3m`.
  if (parts.length === 2 && parts[1]!.startsWith('0')) parts.pop()
  return parts.join(' ')
}

/** A time relative to `now`: `3m 12s ago`, `in 2h 5m`; `-` for none. */
export function formatWhen (iso: string | null | undefined, now = Date.now()): string {
  if (iso === null || iso === undefined) return '-'
  const at = Date.parse(iso)
  if (Number.isNaN(at)) return iso
  const delta = at - now
  return delta >= 0 ? `in ${formatDuration(delta)}` : `${formatDuration(-delta)} ago`
}

/** Bytes in binary units: `512 B`, `1.2 KiB`, `3.4 MiB`. */
export function formatBytes (bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]!}`
}

/** Cuts text to `max` characters on one line, marking the cut with `…`. */
export function truncate (text: string, max: number): string {
  const flat = text.replace(/\s*\n\s*/g, ' ')
  const chars = [...flat]
  return chars.length <= max ? flat : `${chars.slice(0, max - 1).join('')}…`
}

// Code points, not UTF-16 units: a client id or topic may hold any Unicode.
function width (text: string): number {
  return [...text].length
}

function pad (text: string, to: number, align: Align): string {
  const fill = ' '.repeat(Math.max(0, to - width(text)))
  return align === 'right' ? fill + text : text + fill
}
