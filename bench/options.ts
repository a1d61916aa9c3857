import { parseArgs } from 'node:util'
import { defaultScenarioNames, scenarioNames } from './scenarios.js'

/**
 * `mqload`: the C load generator (bench/mqload.ts), one thread per client,
 * the default. `mqttjs`: mqtt.js clients in this process; past about 15k
 * msg/s it measures itself rather than the broker.
 */
export type Generator = 'mqload' | 'mqttjs'

export interface BenchOptions {
  /** Run against this already running broker instead of starting fleetq. */
  url: string | null
  /** Process id of the `--url` broker, to read its RSS; null = unknown. */
  pid: number | null
  /** Start fleetq and Mosquitto and print them side by side. */
  compare: boolean
  generator: Generator
  /** Times each scenario runs on each broker, brokers taking turns (A B A B); the summary shows the median. */
  rounds: number
  /**
   * Messages delivered per scenario, all subscribers together: fan-in splits
   * them among the publishers, fan-out publishes messages / subscribers.
   */
  messages: number
  publishers: number
  subscribers: number
  /** Payload size in bytes; at least {@link MIN_PAYLOAD} (timestamp and ids). */
  payload: number
  /** Most unconfirmed publishes per publisher (PUBACK for QoS 1, delivery for QoS 0). */
  inflight: number
  /** Upper bound on one scenario, in seconds. */
  timeout: number
  /** Messages of an unreported first run per broker, so V8 has compiled the hot paths; 0 = none. */
  warmup: number
  scenarios: string[]
  /** Persistence of the fleetq child process. */
  persistence: 'level' | 'memory'
  /**
   * The cost of metrics: `on` runs fleetq with its HTTP listener and a
   * scraper reading /metrics every second (`fleetq+metrics`), `both` runs
   * that and plain fleetq side by side, `off` only plain fleetq.
   */
  metrics: 'off' | 'on' | 'both'
  json: boolean
}

/** payload[0..8) publish time, [8..12) publisher index, [12..16) sequence number. */
export const MIN_PAYLOAD = 16

/** mqtt.js saturates near 15k msg/s: fewer messages keep its runs as short. */
const MQTTJS_MESSAGES = 20_000
const MQTTJS_WARMUP = 1_000

export const benchDefaults: Readonly<Omit<BenchOptions, 'scenarios'>> = Object.freeze({
  url: null,
  pid: null,
  compare: false,
  generator: 'mqload',
  rounds: 2,
  // 40,000 deliveries per scenario (mqload: 10,000 per publisher in a 4 → 1
  // fan-in) keep the default compare (4 scenarios x 2 brokers x 2 rounds,
  // plus warm-up) around a minute on two busy cores.
  messages: 40_000,
  publishers: 4,
  subscribers: 4,
  payload: 64,
  inflight: 100,
  timeout: 60,
  warmup: 10_000,
  persistence: 'level',
  metrics: 'off',
  json: false
})

export const usage = `Usage: npm run bench -- [options]

  --url <mqtt://host:port>  run against a running broker (default: start fleetq as a child process)
  --pid <pid>               process id of the --url broker, to report its RSS
  --compare                 start fleetq and Mosquitto and print them side by side, with the ratio
  --generator <g>           mqload (C, libmosquitto; default) | mqttjs (mqtt.js in this process, saturates near 15k msg/s)
  --rounds <n>              runs of each scenario per broker, brokers taking turns A B A B (default ${benchDefaults.rounds} with mqload, 1 with mqttjs)
  --messages <n>            messages delivered per scenario, all subscribers together (default ${benchDefaults.messages}; ${MQTTJS_MESSAGES} with mqttjs)
  --publishers <n>          publishers in fan-in scenarios (default ${benchDefaults.publishers})
  --subscribers <n>         subscribers in fan-out scenarios (default ${benchDefaults.subscribers})
  --payload <bytes>         payload size, >= ${MIN_PAYLOAD} (default ${benchDefaults.payload})
  --inflight <n>            unconfirmed publishes per publisher (default ${benchDefaults.inflight})
  --timeout <seconds>       upper bound per scenario (default ${benchDefaults.timeout})
  --warmup <n>              messages of an unreported warm-up run per broker (default ${benchDefaults.warmup}; ${MQTTJS_WARMUP} with mqttjs; 0 = none)
  --scenarios <a,b,...>     some of: ${scenarioNames().join(', ')} (default ${defaultScenarioNames.join(',')} with mqload, all with mqttjs)
  --persistence <kind>      level | memory, for the fleetq child process (default ${benchDefaults.persistence})
  --metrics <off|on|both>   fleetq with /metrics scraped every second (fleetq+metrics), without, or both side by side (default ${benchDefaults.metrics})
  --json                    print results as JSON on stdout
  --help
`

export class UsageError extends Error {
  override name = 'UsageError'
}

/** Parses and validates the command line; throws {@link UsageError} on nonsense. */
export function parseBenchArgs (argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      url: { type: 'string' },
      pid: { type: 'string' },
      compare: { type: 'boolean' },
      generator: { type: 'string' },
      rounds: { type: 'string' },
      messages: { type: 'string' },
      publishers: { type: 'string' },
      subscribers: { type: 'string' },
      payload: { type: 'string' },
      inflight: { type: 'string' },
      timeout: { type: 'string' },
      warmup: { type: 'string' },
      scenarios: { type: 'string' },
      persistence: { type: 'string' },
      metrics: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' }
    }
  })
  if (values.help === true) return 'help'

  const generator = values.generator ?? benchDefaults.generator
  if (generator !== 'mqload' && generator !== 'mqttjs') throw new UsageError(`--generator: must be "mqload" or "mqttjs", got "${generator}"`)
  const known = scenarioNames()
  const scenarios = values.scenarios === undefined
    ? (generator === 'mqload' ? [...defaultScenarioNames] : known)
    : values.scenarios.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  for (const name of scenarios) {
    if (!known.includes(name)) throw new UsageError(`--scenarios: unknown scenario "${name}"; known: ${known.join(', ')}`)
  }
  if (scenarios.length === 0) throw new UsageError('--scenarios: name at least one scenario')

  const url = values.url ?? null
  if (url !== null) {
    let parsed: URL
    try { parsed = new URL(url) } catch { throw new UsageError(`--url: not a URL: ${url}`) }
    if (parsed.protocol !== 'mqtt:') throw new UsageError(`--url: only mqtt:// URLs are supported, got ${parsed.protocol}`)
  }
  const compare = values.compare === true
  if (compare && url !== null) throw new UsageError('--compare starts its own brokers; it cannot be combined with --url')
  if (values.pid !== undefined && url === null) throw new UsageError('--pid only applies to a --url broker')

  const persistence = values.persistence ?? benchDefaults.persistence
  if (persistence !== 'level' && persistence !== 'memory') {
    throw new UsageError(`--persistence: must be "level" or "memory", got "${persistence}"`)
  }

  const metrics = values.metrics ?? benchDefaults.metrics
  if (metrics !== 'off' && metrics !== 'on' && metrics !== 'both') throw new UsageError(`--metrics: must be "off", "on" or "both", got "${metrics}"`)
  if (metrics !== 'off' && url !== null) throw new UsageError('--metrics starts its own fleetq; it cannot be combined with --url')

  return {
    metrics,
    url,
    pid: values.pid === undefined ? null : integer('pid', values.pid, 1),
    compare,
    generator,
    rounds: integer('rounds', values.rounds, 1, generator === 'mqload' ? benchDefaults.rounds : 1),
    messages: integer('messages', values.messages, 1, generator === 'mqload' ? benchDefaults.messages : MQTTJS_MESSAGES),
    publishers: integer('publishers', values.publishers, 1, benchDefaults.publishers),
    subscribers: integer('subscribers', values.subscribers, 1, benchDefaults.subscribers),
    payload: integer('payload', values.payload, MIN_PAYLOAD, benchDefaults.payload),
    inflight: integer('inflight', values.inflight, 1, benchDefaults.inflight),
    timeout: integer('timeout', values.timeout, 1, benchDefaults.timeout),
    warmup: integer('warmup', values.warmup, 0, generator === 'mqload' ? benchDefaults.warmup : MQTTJS_WARMUP),
    scenarios,
    persistence,
    json: values.json === true
  }
}

// Upper bounds keep every loop and buffer of a run bounded, whatever is typed.
const MAX: Record<string, number> = {
  pid: 2 ** 22,
  rounds: 100,
  messages: 10_000_000,
  publishers: 1_000,
  subscribers: 1_000,
  payload: 1_048_576,
  inflight: 100_000,
  timeout: 3_600,
  warmup: 1_000_000
}

function integer (flag: string, raw: string | undefined, min: number, fallback?: number): number {
  if (raw === undefined && fallback !== undefined) return fallback
  const value = Number(raw)
  const max = MAX[flag] ?? Number.MAX_SAFE_INTEGER
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${flag}: must be an integer from ${min} to ${max}, got "${String(raw)}"`)
  }
  return value
}
