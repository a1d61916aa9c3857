import { parseArgs } from 'node:util'
import { UsageError } from './options.js'

/** The four scaling curves of docs/benchmarks.md "Scaling curves". */
export const curveNames = ['payload', 'subscribers', 'depth', 'connections'] as const
export type CurveName = typeof curveNames[number]

/** What each curve varies, its default points and the system it is compared with. */
export const curveDefaults: Readonly<Record<CurveName, { points: readonly number[], min: number, max: number, unit: string }>> = Object.freeze({
  // 64 B to 64 KiB: a sensor reading to a firmware chunk or an image tile.
  payload: { points: [64, 1024, 16384, 65536], min: 16, max: 1_048_576, unit: 'payload bytes' },
  subscribers: { points: [1, 10, 100, 1000], min: 1, max: 2000, unit: 'subscribers per topic' },
  // 1,000,000 is accepted; fleetq needs minutes to enqueue it (docs/benchmarks.md), so it is not a default point.
  // 0: the server's RSS after the warm-up with nothing waiting, the base the other points grow from.
  depth: { points: [0, 1000, 10000, 100000], min: 0, max: 5_000_000, unit: 'tasks waiting' },
  // 19,000: the hard open-file limit here is 20,000 per process (bench:connections).
  connections: { points: [100, 1000, 5000, 19000], min: 1, max: 100_000, unit: 'idle connections' }
})

export interface CurvesOptions {
  curves: CurveName[]
  /** Points of the one curve named; null = each curve's defaults. */
  points: number[] | null
  /** QoS of the payload and subscriber curves. */
  qos: 0 | 1
  /** Deliveries per point of the payload and subscriber curves (payload capped by {@link PAYLOAD_BUDGET_BYTES}). */
  messages: number
  /** Publishers of the payload curve's fan-in. */
  publishers: number
  inflight: number
  /** Upper bound on one mqload run, seconds. */
  timeout: number
  /** Depth curve: worker processes, tasks at once in each, longest drain measured. */
  workers: number
  concurrency: number
  drainSeconds: number
  /** Connections curve: length of the active pair's rate-limited run, seconds. */
  pairSeconds: number
  json: boolean
}

/** A payload point moves at most this many bytes, so 64 KiB points last seconds, not minutes. */
export const PAYLOAD_BUDGET_BYTES = 256 * 1024 * 1024

export const curvesDefaults: Readonly<Omit<CurvesOptions, 'curves' | 'points'>> = Object.freeze({
  qos: 1,
  messages: 20_000,
  publishers: 4,
  inflight: 100,
  timeout: 60,
  workers: 4,
  concurrency: 8,
  drainSeconds: 20,
  pairSeconds: 3,
  json: false
})

export const curvesUsage = `Usage: npm run bench:curves -- [options]

Each point runs briefly on fleetq and on the system it is compared with
(Mosquitto, or BullMQ on Redis for depth), the two taking turns.

  --curves <a,b>        some of: ${curveNames.join(', ')} (default all)
  --points <n,n,...>    points of the one curve named in --curves (defaults:
                        payload ${curveDefaults.payload.points.join(',')};
                        subscribers ${curveDefaults.subscribers.points.join(',')};
                        depth ${curveDefaults.depth.points.join(',')};
                        connections ${curveDefaults.connections.points.join(',')})
  --qos <0|1>           QoS of the payload and subscriber curves (default ${curvesDefaults.qos})
  --messages <n>        deliveries per payload / subscriber point (default ${curvesDefaults.messages}; payload points move at most 256 MiB)
  --publishers <n>      publishers of the payload curve's fan-in (default ${curvesDefaults.publishers})
  --inflight <n>        unconfirmed publishes per publisher (default ${curvesDefaults.inflight})
  --timeout <s>         upper bound on one mqload run (default ${curvesDefaults.timeout})
  --workers <n>         depth: worker processes (default ${curvesDefaults.workers})
  --concurrency <n>     depth: tasks at once per worker process (default ${curvesDefaults.concurrency})
  --drain-seconds <s>   depth: longest the workers are timed draining the queue (default ${curvesDefaults.drainSeconds})
  --pair-seconds <s>    connections: the active pair's 1,000 msg/s run (default ${curvesDefaults.pairSeconds})
  --json                print options, environment and every point as JSON on stdout
  --help
`

export function parseCurvesArgs (argv: string[]): CurvesOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      curves: { type: 'string' },
      points: { type: 'string' },
      qos: { type: 'string' },
      messages: { type: 'string' },
      publishers: { type: 'string' },
      inflight: { type: 'string' },
      timeout: { type: 'string' },
      workers: { type: 'string' },
      concurrency: { type: 'string' },
      'drain-seconds': { type: 'string' },
      'pair-seconds': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) return 'help'
  const curves = values.curves === undefined
    ? [...curveNames]
    : values.curves.split(',').map((c) => c.trim()).filter((c) => c.length > 0)
  for (const c of curves) {
    if (!(curveNames as readonly string[]).includes(c)) throw new UsageError(`--curves: unknown curve "${c}"; known: ${curveNames.join(', ')}`)
  }
  if (curves.length === 0) throw new UsageError('--curves: name at least one curve')
  let points: number[] | null = null
  if (values.points !== undefined) {
    if (curves.length !== 1) throw new UsageError('--points: name exactly one curve in --curves')
    const { min, max } = curveDefaults[curves[0] as CurveName]
    points = values.points.split(',').map((p) => integer('points', p.trim(), min, max))
    if (points.length === 0) throw new UsageError('--points: give at least one point')
  }
  const qos = integer('qos', values.qos, 0, 1, curvesDefaults.qos)
  return {
    curves: curves as CurveName[],
    points,
    qos: qos === 0 ? 0 : 1,
    messages: integer('messages', values.messages, 1, 10_000_000, curvesDefaults.messages),
    publishers: integer('publishers', values.publishers, 1, 1_000, curvesDefaults.publishers),
    inflight: integer('inflight', values.inflight, 1, 100_000, curvesDefaults.inflight),
    timeout: integer('timeout', values.timeout, 1, 3_600, curvesDefaults.timeout),
    workers: integer('workers', values.workers, 1, 64, curvesDefaults.workers),
    concurrency: integer('concurrency', values.concurrency, 1, 1_000, curvesDefaults.concurrency),
    drainSeconds: integer('drain-seconds', values['drain-seconds'], 1, 3_600, curvesDefaults.drainSeconds),
    pairSeconds: integer('pair-seconds', values['pair-seconds'], 1, 600, curvesDefaults.pairSeconds),
    json: values.json === true
  }
}

/** The points a curve runs: `--points`, or its defaults. */
export function pointsOf (curve: CurveName, options: Pick<CurvesOptions, 'points'>): readonly number[] {
  return options.points ?? curveDefaults[curve].points
}

function integer (flag: string, raw: string | undefined, min: number, max: number, fallback?: number): number {
  if (raw === undefined && fallback !== undefined) return fallback
  const value = Number(raw)
  if (raw === '' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${flag}: must be an integer from ${min} to ${max}, got "${String(raw)}"`)
  }
  return value
}
