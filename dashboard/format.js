/* How numbers, sizes and times read on the dashboard: fixed locale, tabular digits in CSS. */

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })
const decimal = new Intl.NumberFormat('en-US', { minimumFractionDigits: 1, maximumFractionDigits: 1 })

export const count = (n) => (n === null || n === undefined ? '–' : integer.format(n))

/** A rate per second: one decimal under 100, whole numbers above. */
export function rate (perSecond) {
  if (perSecond === null || perSecond === undefined || Number.isNaN(perSecond)) return '–'
  return perSecond < 100 ? decimal.format(perSecond) : integer.format(perSecond)
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
export function bytes (n) {
  if (n === null || n === undefined) return '–'
  let value = n
  let unit = 0
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value < 10 ? decimal.format(value) : integer.format(value)} ${UNITS[unit]}`
}

/** A duration in its two largest units: `3d 4h`, `12m 5s`, `40s`. */
export function duration (seconds) {
  if (seconds === null || seconds === undefined) return '–'
  const s = Math.max(0, Math.floor(seconds))
  const parts = [[Math.floor(s / 86400), 'd'], [Math.floor(s / 3600) % 24, 'h'], [Math.floor(s / 60) % 60, 'm'], [s % 60, 's']]
  const first = parts.findIndex(([value]) => value > 0)
  if (first === -1) return '0s'
  return parts.slice(first, first + 2).filter(([value]) => value > 0).map(([value, unit]) => `${value}${unit}`).join(' ')
}

const timeOnly = new Intl.DateTimeFormat('en-GB', { hour: '2-digit', minute: '2-digit', second: '2-digit' })
const dateTime = new Intl.DateTimeFormat('en-GB', { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })

/** A timestamp in local time: the time alone when it is today. */
export function when (iso) {
  if (!iso) return '–'
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  const today = new Date()
  return date.toDateString() === today.toDateString() ? timeOnly.format(date) : dateTime.format(date)
}

/** `5s ago`, `in 3m`: for next and last runs. */
export function relative (iso, now = Date.now()) {
  if (!iso) return ''
  const diff = (new Date(iso).getTime() - now) / 1000
  if (Number.isNaN(diff)) return ''
  if (Math.abs(diff) < 1) return 'now'
  return diff > 0 ? `in ${duration(diff)}` : `${duration(-diff)} ago`
}

/** The first `max` characters of a text, on one line. */
export function preview (text, max = 80) {
  if (text === null || text === undefined) return ''
  const flat = String(text).replace(/\s+/g, ' ')
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat
}

/** Pretty JSON of a value, or the text as it is when it is not JSON. */
export function pretty (value) {
  if (typeof value === 'string') {
    try {
      return JSON.stringify(JSON.parse(value), null, 2)
    } catch {
      return value
    }
  }
  return JSON.stringify(value, null, 2)
}
