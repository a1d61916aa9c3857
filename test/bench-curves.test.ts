import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { externalTarget } from '../bench/brokers.js'
import { pointSettings, runMessagingCurve } from '../bench/curves-messaging.js'
import { curvesDefaults, parseCurvesArgs, pointsOf, type CurvesOptions } from '../bench/curves-options.js'
import { measureDepth } from '../bench/curves-queue.js'
import { formatCurve, type PointResult } from '../bench/curves-report.js'
import { mqloadMissingPrerequisite } from '../bench/mqload.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'

// Exercises `npm run bench:curves` end to end at toy sizes, measuring nothing:
// the C load generator needs cc and libmosquitto-dev (docs/benchmarks.md "Running").
const missing = await mqloadMissingPrerequisite()

const options = (more: Partial<CurvesOptions> = {}): CurvesOptions => ({ ...curvesDefaults, curves: ['payload'], points: null, ...more })

describe('bench:curves options and tables', () => {
  it('runs every curve at its default points unless told otherwise', () => {
    const parsed = parseCurvesArgs([])
    if (parsed === 'help') throw new Error('help')
    expect(parsed.curves).toEqual(['payload', 'subscribers', 'depth', 'connections'])
    expect(pointsOf('subscribers', parsed)).toEqual([1, 10, 100, 1000])
    const one = parseCurvesArgs(['--curves', 'depth', '--points', '1000,1000000'])
    if (one === 'help') throw new Error('help')
    expect(pointsOf('depth', one)).toEqual([1000, 1_000_000])
    expect(() => parseCurvesArgs(['--curves', 'payload,depth', '--points', '64'])).toThrow(/exactly one curve/)
    expect(() => parseCurvesArgs(['--curves', 'latency'])).toThrow(/unknown curve/)
    expect(() => parseCurvesArgs(['--curves', 'payload', '--points', '8'])).toThrow(/--points/)
  })

  it('caps a payload point at 256 MiB and gives every subscriber point the same deliveries', () => {
    expect(pointSettings('payload', 65536, options()).settings).toMatchObject({ messages: 4096, payload: 65536, publishers: 4 })
    expect(pointSettings('payload', 64, options()).settings.messages).toBe(20_000)
    expect(pointSettings('subscribers', 1000, options())).toMatchObject({ scenario: 'qos1-fanout', settings: { messages: 20_000, subscribers: 1000, publishers: 1 } })
  })

  it('puts fleetq, the baseline and their ratio side by side per point', () => {
    const row = (system: string, msgPerSec: number, notes: string[] = []): PointResult =>
      ({ curve: 'payload', point: 1024, system, at: '2026-12-03T03:00:00.000Z', loadAverage: 2.5, values: { msgPerSec }, notes, failed: false })
    const table = formatCurve('payload B', 'mosquitto', [{ key: 'msgPerSec', label: 'msg/s', digits: 0, ratio: true }],
      [row('fleetq', 3000), row('mosquitto', 2000, ['3 of 100 lost'])])
    expect(table.split('\n')[2]).toMatch(/^\| 1,024 +\| +3,000 \| +2,000 \| 1\.50× \| 03:00 \| 2\.50 \| mosquitto: 3 of 100 lost \|$/)
  })
})

describe.skipIf(missing !== null)(`bench:curves against real brokers${missing === null ? '' : ` (skipped: ${missing})`}`, () => {
  let broker: TestBroker
  beforeAll(async () => { broker = await startBroker({ limits: { publishesPerSecondPerClient: 0, connectsPerSecondPerAddress: 0, maxConnectionsPerAddress: 0 } }) })
  afterAll(async () => { await broker.close() })

  it('runs a subscriber curve past the poll-thread threshold of mqload with every delivery counted', async () => {
    const target = externalTarget(broker.url, null)
    const results = await runMessagingCurve('subscribers', [2, 80], [target], options({ messages: 800, timeout: 30 }), () => undefined)
    expect(results.map((r) => [r.point, r.values.delivered, r.notes])).toEqual([[2, 800, []], [80, 800, []]])
  })

  it('fills a fleetq queue with no worker taking from it, then times the workers draining it', async () => {
    const result = await measureDepth('fleetq', 200, options({ workers: 1, concurrency: 4, drainSeconds: 30 }), { at: new Date().toISOString(), loadAverage: 0 })
    expect(result.notes).toEqual([])
    expect(result.values).toMatchObject({ processed: 200 })
    expect(result.values.rssMb).toBeGreaterThan(0)
    expect(result.values.drainSeconds).toBeGreaterThan(0)
  })
})
