import { describe, expect, it } from 'vitest'
import { ErrorCodes, ScheduleError } from '../protocol/errors.js'
import { compileCron, type CronSpec } from '../broker/scheduler/cron-spec.js'

// Fixed instants only: nothing here reads the clock (compileCron's "never fires" check aside).
const ms = (iso: string): number => Date.parse(iso)
const iso = (t: number): string => new Date(t).toISOString().replace('.000Z', 'Z')

/** The next `n` ticks after `fromIso`, each found from the one before. */
function nextTicks (cron: string, timezone: string, fromIso: string, n = 3): string[] {
  const compiled = compileCron({ cron, timezone })
  const out: string[] = []
  let t: number | null = ms(fromIso)
  while (out.length < n && (t = compiled.nextAfter(t)) !== null) out.push(iso(t))
  return out
}

/** Every tick in [startIso, endIso): a local day when those are its midnights. */
function ticksIn (cron: string, timezone: string, startIso: string, endIso: string): number[] {
  const { ticks, truncated } = compileCron({ cron, timezone }).ticksBetween(ms(startIso) - 1, ms(endIso) - 1, 1000)
  expect(truncated).toBe(false)
  return ticks
}

function localHour (t: number, timeZone: string): number {
  return Number(new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', hourCycle: 'h23' }).format(t))
}

function refusal (spec: CronSpec, name?: string): ScheduleError {
  try {
    compileCron(spec, name)
  } catch (err) {
    if (err instanceof ScheduleError) return err
    throw err
  }
  throw new Error(`compileCron accepted ${JSON.stringify(spec)}`)
}

// A Thursday: 10:17:23.456 UTC, 15:47:23.456 in Kolkata (+05:30).
const from = '2026-01-15T10:17:23.456Z'

describe('compileCron: expression matrix', () => {
  const utc: Array<[string, string[]]> = [
    ['* * * * *', ['2026-01-15T10:18:00Z', '2026-01-15T10:19:00Z', '2026-01-15T10:20:00Z']],
    ['*/15 * * * *', ['2026-01-15T10:30:00Z', '2026-01-15T10:45:00Z', '2026-01-15T11:00:00Z']],
    ['5,35 * * * *', ['2026-01-15T10:35:00Z', '2026-01-15T11:05:00Z', '2026-01-15T11:35:00Z']],
    ['0 9-17/4 * * MON-FRI', ['2026-01-15T13:00:00Z', '2026-01-15T17:00:00Z', '2026-01-16T09:00:00Z']],
    ['0 0 * * SUN', ['2026-01-18T00:00:00Z', '2026-01-25T00:00:00Z', '2026-02-01T00:00:00Z']],
    ['0 0 * * 7', ['2026-01-18T00:00:00Z', '2026-01-25T00:00:00Z', '2026-02-01T00:00:00Z']],
    ['30 8 1,15 * *', ['2026-02-01T08:30:00Z', '2026-02-15T08:30:00Z', '2026-03-01T08:30:00Z']],
    ['0 0 1 */3 *', ['2026-04-01T00:00:00Z', '2026-07-01T00:00:00Z', '2026-10-01T00:00:00Z']],
    ['0 6 * JAN,jul mon', ['2026-01-19T06:00:00Z', '2026-01-26T06:00:00Z', '2026-07-06T06:00:00Z']],
    // Day-of-month OR day-of-week, as Vixie cron: Friday 16th, Tuesday 20th, Friday 23rd.
    ['0 12 20 * FRI', ['2026-01-16T12:00:00Z', '2026-01-20T12:00:00Z', '2026-01-23T12:00:00Z']],
    // The 20th AND a Friday (croner's `+`): next in February 2026.
    ['0 12 20 * +FRI', ['2026-02-20T12:00:00Z', '2026-03-20T12:00:00Z', '2026-11-20T12:00:00Z']],
    ['@hourly', ['2026-01-15T11:00:00Z', '2026-01-15T12:00:00Z', '2026-01-15T13:00:00Z']],
    ['@daily', ['2026-01-16T00:00:00Z', '2026-01-17T00:00:00Z', '2026-01-18T00:00:00Z']],
    ['@weekly', ['2026-01-18T00:00:00Z', '2026-01-25T00:00:00Z', '2026-02-01T00:00:00Z']],
    ['@monthly', ['2026-02-01T00:00:00Z', '2026-03-01T00:00:00Z', '2026-04-01T00:00:00Z']],
    ['@yearly', ['2027-01-01T00:00:00Z', '2028-01-01T00:00:00Z', '2029-01-01T00:00:00Z']],
    // 6 fields, leading seconds.
    ['*/10 * * * * *', ['2026-01-15T10:17:30Z', '2026-01-15T10:17:40Z', '2026-01-15T10:17:50Z']],
    ['15 30 10 * * *', ['2026-01-15T10:30:15Z', '2026-01-16T10:30:15Z', '2026-01-17T10:30:15Z']],
    ['0-10/5 0 11 * * *', ['2026-01-15T11:00:00Z', '2026-01-15T11:00:05Z', '2026-01-15T11:00:10Z']],
    ['0 0 0 29 2 *', ['2028-02-29T00:00:00Z', '2032-02-29T00:00:00Z', '2036-02-29T00:00:00Z']]
  ]
  it.each(utc)('UTC %s', (cron, expected) => {
    expect(nextTicks(cron, 'UTC', from)).toEqual(expected)
  })

  // +05:30 all year: ticks land on :30 UTC, and local midnight is the previous UTC day.
  const kolkata: Array<[string, string[]]> = [
    ['0 * * * *', ['2026-01-15T10:30:00Z', '2026-01-15T11:30:00Z', '2026-01-15T12:30:00Z']],
    ['*/45 * * * *', ['2026-01-15T10:30:00Z', '2026-01-15T11:15:00Z', '2026-01-15T11:30:00Z']],
    ['0 9 * * *', ['2026-01-16T03:30:00Z', '2026-01-17T03:30:00Z', '2026-01-18T03:30:00Z']],
    ['0 2 * * *', ['2026-01-15T20:30:00Z', '2026-01-16T20:30:00Z', '2026-01-17T20:30:00Z']],
    ['0 9-17/4 * * MON-FRI', ['2026-01-15T11:30:00Z', '2026-01-16T03:30:00Z', '2026-01-16T07:30:00Z']],
    ['0 0 * * SUN', ['2026-01-17T18:30:00Z', '2026-01-24T18:30:00Z', '2026-01-31T18:30:00Z']],
    ['0 12 20 * FRI', ['2026-01-16T06:30:00Z', '2026-01-20T06:30:00Z', '2026-01-23T06:30:00Z']],
    ['@daily', ['2026-01-15T18:30:00Z', '2026-01-16T18:30:00Z', '2026-01-17T18:30:00Z']],
    ['30 0 18 * * *', ['2026-01-15T12:30:30Z', '2026-01-16T12:30:30Z', '2026-01-17T12:30:30Z']]
  ]
  it.each(kolkata)('Asia/Kolkata %s', (cron, expected) => {
    expect(nextTicks(cron, 'Asia/Kolkata', from)).toEqual(expected)
  })

  it('Asia/Kathmandu (+05:45) @daily', () => {
    expect(nextTicks('@daily', 'Asia/Kathmandu', from, 2)).toEqual(['2026-01-15T18:15:00Z', '2026-01-16T18:15:00Z'])
  })

  it('nextAfter is strictly after, to the millisecond', () => {
    const hourly = compileCron({ cron: '0 * * * *', timezone: 'UTC' })
    expect(iso(hourly.nextAfter(ms('2026-01-15T11:00:00Z'))!)).toBe('2026-01-15T12:00:00Z')
    expect(iso(hourly.nextAfter(ms('2026-01-15T11:00:00Z') - 1)!)).toBe('2026-01-15T11:00:00Z')
    expect(iso(hourly.nextAfter(ms('2026-01-15T11:00:00Z') + 1)!)).toBe('2026-01-15T12:00:00Z')
    expect(() => hourly.nextAfter(Number.NaN)).toThrow(RangeError)
  })

  it('keeps the spec as given, in a frozen object', () => {
    const compiled = compileCron({ cron: '@daily', timezone: 'Europe/Berlin' })
    expect(compiled).toMatchObject({ cron: '@daily', timezone: 'Europe/Berlin' })
    expect(Object.isFrozen(compiled)).toBe(true)
  })
})

interface DstDay {
  zone: string
  name: string
  /** Local midnight to local midnight, in UTC. */
  day: [string, string]
  hours: 23 | 25
  /** Daily jobs and every tick they have that local day. */
  daily: Array<[string, string[], string]>
  /** An hourly window across the transition and its exact ticks. */
  hourly: [string, string, string[]]
}

const dstDays: DstDay[] = [
  {
    zone: 'America/New_York',
    name: 'spring forward 2026-03-08, 02:00 EST -> 03:00 EDT',
    day: ['2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z'],
    hours: 23,
    daily: [
      ['30 2 * * *', ['2026-03-08T07:00:00Z'], 'in the gap: runs when it ends, 03:00 EDT'],
      ['30 1 * * *', ['2026-03-08T06:30:00Z'], 'repeated in the fall, ordinary today'],
      ['30 2,14 * * *', ['2026-03-08T07:00:00Z', '2026-03-08T18:30:00Z'], 'a list of fixed times is fixed-time too'],
      ['0 0 * * *', ['2026-03-08T05:00:00Z'], 'outside: 00:00 EST'],
      ['0 1 * * *', ['2026-03-08T06:00:00Z'], 'outside: 01:00 EST'],
      ['0 4 * * *', ['2026-03-08T08:00:00Z'], 'outside: 04:00 EDT']
    ],
    hourly: ['2026-03-08T05:30:00Z', '2026-03-08T09:00:00Z', ['2026-03-08T06:00:00Z', '2026-03-08T07:00:00Z', '2026-03-08T08:00:00Z', '2026-03-08T09:00:00Z']]
  },
  {
    zone: 'America/New_York',
    name: 'fall back 2026-11-01, 02:00 EDT -> 01:00 EST',
    day: ['2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z'],
    hours: 25,
    daily: [
      ['30 1 * * *', ['2026-11-01T05:30:00Z'], 'repeated: first occurrence only, 01:30 EDT'],
      ['30 2 * * *', ['2026-11-01T07:30:00Z'], 'skipped in the spring, ordinary today'],
      ['30 1,14 * * *', ['2026-11-01T05:30:00Z', '2026-11-01T19:30:00Z'], 'a list of fixed times is fixed-time too'],
      ['0 0 * * *', ['2026-11-01T04:00:00Z'], 'outside: 00:00 EDT'],
      ['0 4 * * *', ['2026-11-01T09:00:00Z'], 'outside: 04:00 EST']
    ],
    hourly: ['2026-11-01T04:30:00Z', '2026-11-01T09:00:00Z', ['2026-11-01T05:00:00Z', '2026-11-01T06:00:00Z', '2026-11-01T07:00:00Z', '2026-11-01T08:00:00Z', '2026-11-01T09:00:00Z']]
  },
  {
    zone: 'Europe/Berlin',
    name: 'spring forward 2026-03-29, 02:00 CET -> 03:00 CEST',
    day: ['2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z'],
    hours: 23,
    daily: [
      ['30 2 * * *', ['2026-03-29T01:00:00Z'], 'in the gap: runs when it ends, 03:00 CEST'],
      ['0 1 * * *', ['2026-03-29T00:00:00Z'], 'outside: 01:00 CET'],
      ['0 4 * * *', ['2026-03-29T02:00:00Z'], 'outside: 04:00 CEST']
    ],
    hourly: ['2026-03-28T23:30:00Z', '2026-03-29T03:00:00Z', ['2026-03-29T00:00:00Z', '2026-03-29T01:00:00Z', '2026-03-29T02:00:00Z', '2026-03-29T03:00:00Z']]
  },
  {
    zone: 'Europe/Berlin',
    name: 'fall back 2026-10-25, 03:00 CEST -> 02:00 CET',
    day: ['2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z'],
    hours: 25,
    daily: [
      ['30 2 * * *', ['2026-10-25T00:30:00Z'], 'repeated: first occurrence only, 02:30 CEST'],
      ['0 1 * * *', ['2026-10-24T23:00:00Z'], 'outside: 01:00 CEST'],
      ['0 4 * * *', ['2026-10-25T03:00:00Z'], 'outside: 04:00 CET']
    ],
    hourly: ['2026-10-24T22:30:00Z', '2026-10-25T03:00:00Z', ['2026-10-24T23:00:00Z', '2026-10-25T00:00:00Z', '2026-10-25T01:00:00Z', '2026-10-25T02:00:00Z', '2026-10-25T03:00:00Z']]
  },
  {
    zone: 'Australia/Sydney',
    name: 'fall back 2026-04-05, 03:00 AEDT -> 02:00 AEST',
    day: ['2026-04-04T13:00:00Z', '2026-04-05T14:00:00Z'],
    hours: 25,
    daily: [['30 2 * * *', ['2026-04-04T15:30:00Z'], 'repeated: first occurrence only, 02:30 AEDT']],
    hourly: ['2026-04-04T14:30:00Z', '2026-04-04T18:00:00Z', ['2026-04-04T15:00:00Z', '2026-04-04T16:00:00Z', '2026-04-04T17:00:00Z', '2026-04-04T18:00:00Z']]
  },
  {
    zone: 'Australia/Sydney',
    name: 'spring forward 2026-10-04, 02:00 AEST -> 03:00 AEDT',
    day: ['2026-10-03T14:00:00Z', '2026-10-04T13:00:00Z'],
    hours: 23,
    daily: [['30 2 * * *', ['2026-10-03T16:00:00Z'], 'in the gap: runs when it ends, 03:00 AEDT']],
    hourly: ['2026-10-03T14:30:00Z', '2026-10-03T17:00:00Z', ['2026-10-03T15:00:00Z', '2026-10-03T16:00:00Z', '2026-10-03T17:00:00Z']]
  }
]

describe.each(dstDays)('DST: $zone, $name', ({ zone, day, hours, daily, hourly }) => {
  it.each(daily)('%s runs exactly %j that day (%s)', (cron, expected) => {
    expect(ticksIn(cron, zone, ...day).map(iso)).toEqual(expected)
    expect(iso(compileCron({ cron, timezone: zone }).nextAfter(ms(day[0]) - 1)!)).toBe(expected[0])
  })

  it('an hourly job gives the exact instants across the transition', () => {
    const [start, end, expected] = hourly
    const { ticks } = compileCron({ cron: '0 * * * *', timezone: zone }).ticksBetween(ms(start), ms(end), 100)
    expect(ticks.map(iso)).toEqual(expected)
  })

  it(`an hourly job runs at each of the day's ${hours} real hours, strictly increasing`, () => {
    const ticks = ticksIn('0 * * * *', zone, ...day)
    expect(ticks).toHaveLength(hours)
    ticks.slice(1).forEach((t, i) => expect(t - ticks[i]!).toBe(3_600_000))
    const local = ticks.map((t) => localHour(t, zone))
    // Spring: one local hour never happens. Fall: one happens twice.
    expect(new Set(local).size).toBe(hours === 23 ? 23 : 24)
  })
})

describe('DST: beyond the daily matrix', () => {
  it('a fixed-time job does not run again on the second pass through a repeated hour', () => {
    const job = compileCron({ cron: '30 1 * * *', timezone: 'America/New_York' })
    expect(iso(job.nextAfter(ms('2026-11-01T05:30:00Z'))!)).toBe('2026-11-02T06:30:00Z')
    expect(iso(job.nextAfter(ms('2026-11-01T06:00:00Z'))!)).toBe('2026-11-02T06:30:00Z') // 01:00 EST
  })

  it('an interval job skips the gap and runs on both passes through a repeated hour', () => {
    const job = compileCron({ cron: '*/30 * * * *', timezone: 'America/New_York' })
    // 01:00 EST, 01:30 EST, then 03:00 EDT: 02:00 and 02:30 do not exist.
    expect(job.ticksBetween(ms('2026-03-08T05:45:00Z'), ms('2026-03-08T07:30:00Z'), 100).ticks.map(iso))
      .toEqual(['2026-03-08T06:00:00Z', '2026-03-08T06:30:00Z', '2026-03-08T07:00:00Z', '2026-03-08T07:30:00Z'])
    // 01:00 and 01:30 EDT, then 01:00 and 01:30 EST, then 02:00 EST.
    expect(job.ticksBetween(ms('2026-11-01T04:45:00Z'), ms('2026-11-01T07:00:00Z'), 100).ticks.map(iso))
      .toEqual(['2026-11-01T05:00:00Z', '2026-11-01T05:30:00Z', '2026-11-01T06:00:00Z', '2026-11-01T06:30:00Z', '2026-11-01T07:00:00Z'])
  })
})

describe('ticksBetween', () => {
  const hourly = compileCron({ cron: '0 * * * *', timezone: 'UTC' })

  it('covers (from, to]: excludes a tick at from, includes a tick at to', () => {
    expect(hourly.ticksBetween(ms('2026-01-15T10:00:00Z'), ms('2026-01-15T12:00:00Z'), 10))
      .toEqual({ ticks: [ms('2026-01-15T11:00:00Z'), ms('2026-01-15T12:00:00Z')], truncated: false })
    expect(hourly.ticksBetween(ms('2026-01-15T10:00:00Z') - 1, ms('2026-01-15T12:00:00Z') - 1, 10))
      .toEqual({ ticks: [ms('2026-01-15T10:00:00Z'), ms('2026-01-15T11:00:00Z')], truncated: false })
  })

  it('stops at limit and says so; exactly limit ticks is not truncated', () => {
    const [a, b] = [ms('2026-01-15T10:00:00Z'), ms('2026-01-15T13:00:00Z')]
    expect(hourly.ticksBetween(a, b, 3)).toEqual({ ticks: [a + 3_600_000, a + 7_200_000, b], truncated: false })
    expect(hourly.ticksBetween(a, b, 2)).toEqual({ ticks: [a + 3_600_000, a + 7_200_000], truncated: true })
    expect(hourly.ticksBetween(a, b, 0)).toEqual({ ticks: [], truncated: true })
  })

  it('an every-second cron over a day stops at the limit (no walk through 86,400 ticks)', () => {
    const start = ms('2026-01-15T00:00:00Z')
    const { ticks, truncated } = compileCron({ cron: '* * * * * *', timezone: 'Europe/Berlin' })
      .ticksBetween(start, start + 86_400_000, 500)
    expect(truncated).toBe(true)
    expect(ticks).toHaveLength(500)
    expect(ticks[0]).toBe(start + 1000)
    expect(ticks[499]).toBe(start + 500_000)
  })

  it('is empty for an empty, reversed or tick-free range', () => {
    const t = ms('2026-01-15T10:00:00Z')
    expect(hourly.ticksBetween(t, t, 10)).toEqual({ ticks: [], truncated: false })
    expect(hourly.ticksBetween(t + 7_200_000, t, 10)).toEqual({ ticks: [], truncated: false })
    expect(hourly.ticksBetween(t, t + 3_599_999, 10)).toEqual({ ticks: [], truncated: false })
  })

  it('refuses a bad limit or instant', () => {
    const t = ms('2026-01-15T10:00:00Z')
    expect(() => hourly.ticksBetween(t, t + 1, -1)).toThrow(RangeError)
    expect(() => hourly.ticksBetween(t, t + 1, 1.5)).toThrow(RangeError)
    expect(() => hourly.ticksBetween(Number.NaN, t, 1)).toThrow(RangeError)
    expect(() => hourly.ticksBetween(t, Number.POSITIVE_INFINITY, 1)).toThrow(RangeError)
  })
})

describe('compileCron: refusals', () => {
  // [expression, whether croner's own error is the cause]
  const badCrons: Array<[string, boolean]> = [
    ['', true],
    ['not a cron', true],
    ['61 * * * *', true],
    ['* * * *', true],
    ['0 0 0 1 1 * 2030', true], // croner's 7th (year) field
    ['*/0 * * * *', true],
    ['@reboot', true],
    ['@fortnightly', true],
    ['2030-01-01T00:00:00', false], // croner would run it once, as a date
    ['0 0 30 2 *', false], // never fires
    ['0 0 31 4 *', false] // never fires
  ]
  it.each(badCrons)('cron %j is FLEETQ_CRON_INVALID', (cron, hasCause) => {
    const err = refusal({ cron, timezone: 'UTC' }, 'nightly-report')
    expect(err.code).toBe('FLEETQ_CRON_INVALID')
    expect(err.code).toBe(ErrorCodes.CRON_INVALID)
    expect(err.schedule).toBe('nightly-report')
    expect(err.message).toContain(`"${cron}"`)
    expect(err.message).toContain('nightly-report')
    if (hasCause) expect(err.cause).toBeInstanceOf(Error)
    else expect(err.cause).toBeUndefined()
  })

  it('says a never-firing cron never fires', () => {
    expect(refusal({ cron: '0 0 30 2 *', timezone: 'UTC' }).message).toMatch(/never fires/)
  })

  it('refuses a cron that is not a string', () => {
    const err = refusal({ cron: 42 as unknown as string, timezone: 'UTC' }, 'x')
    expect(err).toMatchObject({ code: ErrorCodes.CRON_INVALID, schedule: 'x' })
  })

  it.each(['Mars/Olympus', '', 'Europe/Berlinn', 'GMT+25'])('time zone %j is FLEETQ_TIMEZONE_INVALID', (timezone) => {
    const err = refusal({ cron: '@daily', timezone }, 'nightly-report')
    expect(err).toMatchObject({ code: 'FLEETQ_TIMEZONE_INVALID', schedule: 'nightly-report' })
    expect(err.message).toContain(`"${timezone}"`)
    expect(err.cause).toBeInstanceOf(RangeError)
  })

  it('refuses a time zone that is not a string (Intl would take the host zone)', () => {
    const err = refusal({ cron: '@daily', timezone: undefined as unknown as string })
    expect(err).toMatchObject({ code: ErrorCodes.TIMEZONE_INVALID, schedule: undefined })
  })

  it('checks the time zone before the cron', () => {
    expect(refusal({ cron: 'not a cron', timezone: 'Mars/Olympus' }).code).toBe(ErrorCodes.TIMEZONE_INVALID)
  })

  it.each(['UTC', 'Etc/GMT+5', 'EST5EDT', 'Asia/Kolkata'])('accepts time zone %s', (timezone) => {
    expect(compileCron({ cron: '@daily', timezone }).timezone).toBe(timezone)
  })
})
