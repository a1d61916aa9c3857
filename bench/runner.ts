import { randomBytes } from 'node:crypto'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import type { MqttClient } from 'mqtt'
import type { BenchTarget } from './brokers.js'
import { runMqloadScenario } from './mqload-runner.js'
import { closeLoadClient, connectLoadClient, runPublisher, Window, type PublisherCounters } from './load.js'
import type { BenchOptions } from './options.js'
import { findScenario, type Scenario } from './scenarios.js'
import { readCpuSeconds, RssSampler } from './stats.js'
import { DeliveryTracker } from './tracker.js'

export interface ScenarioResult {
  scenario: string
  broker: string
  /** 1-based: the brokers take turns, round after round (A B A B). */
  round: number
  qos: 0 | 1
  publishers: number
  subscribers: number
  /** Messages handed to mqtt.js by the publishers. */
  published: number
  /** Deliveries expected at the subscribers (published x copies). */
  expected: number
  /** Distinct deliveries counted at the subscribers. */
  delivered: number
  lost: number
  duplicates: number
  /** From the first publish to the last delivery. */
  seconds: number
  /** Delivered messages per second, all subscribers together. */
  msgPerSec: number
  p50Ms: number | null
  p99Ms: number | null
  maxMs: number | null
  /** Peak broker RSS during the scenario, MiB; null when the pid is unknown. */
  rssMb: number | null
  /** Broker CPU time (user + system) during the scenario, seconds; null when unknown. */
  cpuSeconds: number | null
  /**
   * Longest the load generator's event loop was blocked, ms. Tens of ms are
   * normal; hundreds mean the machine was busy (other processes, steal) and
   * the latency figures measure that, not the broker.
   */
  generatorLagMs: number
  timedOut: boolean
  /** Why the run stopped early (a client disconnected, for example). */
  error: string | null
}

/** No new delivery for this long ends a scenario as stalled (messages lost). */
const STALL_MS = 5_000

export type Settings = Pick<BenchOptions, 'messages' | 'publishers' | 'subscribers' | 'payload' | 'inflight' | 'timeout'>

/**
 * Messages each publisher sends so that subscribers receive about
 * `deliveries` in all: a fan-out to 4 subscribers publishes a quarter as many.
 * Every scenario then moves the same number of messages, and a fan-out row
 * takes no longer than a fan-in row.
 */
export function planPublishes (deliveries: number, publishers: number, copiesPerMessage: number): number[] {
  return splitMessages(Math.max(1, Math.ceil(deliveries / copiesPerMessage)), publishers)
}

/** Splits `total` messages as evenly as possible among `publishers`. */
export function splitMessages (total: number, publishers: number): number[] {
  return Array.from({ length: publishers }, (_, i) => Math.floor(total / publishers) + (i < total % publishers ? 1 : 0))
}

/**
 * Connects `count` clients concurrently. Waits for every attempt before
 * failing, so no client connects after the caller's cleanup has run.
 */
async function connectAll (count: number, connect: (index: number) => Promise<MqttClient>): Promise<MqttClient[]> {
  const settled = await Promise.allSettled(Array.from({ length: count }, (_, i) => connect(i)))
  const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failure !== undefined) throw failure.reason
  return settled.map((s) => (s as PromiseFulfilledResult<MqttClient>).value)
}

/** Runs one scenario against one broker; every client is closed before it returns. */
export async function runScenario (target: BenchTarget, scenario: Scenario, settings: Settings, runId: string, interrupt?: AbortSignal): Promise<ScenarioResult> {
  const publisherCount = scenario.publishers(settings)
  const subscriberCount = scenario.subscribers(settings)
  const copies = scenario.copiesPerMessage(subscriberCount)
  const perPublisher = planPublishes(settings.messages, publisherCount, copies)
  // A fresh prefix per run: nothing retained or queued by an earlier run can be counted.
  const prefix = `fleetq-bench/${runId}/${scenario.name}`
  const windows = perPublisher.map(() => new Window(settings.inflight))
  const tracker = new DeliveryTracker({
    perPublisher,
    subscribers: subscriberCount,
    copiesPerMessage: copies,
    onComplete: scenario.qos === 0 ? (publisher) => windows[publisher]?.release() : undefined
  })
  const stop = new AbortController()
  let error: string | null = null
  const fail = (message: string): void => {
    error ??= message
    stop.abort()
  }
  const onInterrupt = (): void => fail('interrupted')
  if (interrupt?.aborted === true) onInterrupt()
  interrupt?.addEventListener('abort', onInterrupt, { once: true })
  const clients: MqttClient[] = []
  let closing = false
  const watch = (client: MqttClient, role: string): MqttClient => {
    clients.push(client)
    // Without an 'error' listener an mqtt.js error event would throw.
    client.on('error', (err) => fail(`${role}: ${err.message}`))
    client.on('close', () => { if (!closing) fail(`${role}: disconnected by the broker`) })
    return client
  }

  try {
    const subscribers = await connectAll(subscriberCount, async (i) => {
      const client = watch(await connectLoadClient(target.url, `${runId}-${scenario.name}-sub${i}`), `subscriber ${i}`)
      client.on('message', (_topic, payload) => tracker.receive(i, payload))
      return client
    })
    // Publishing starts only after every SUBACK, or early messages would be lost by design.
    await Promise.all(subscribers.map(async (client, i) => {
      const granted = await client.subscribeAsync(scenario.subscribeFilter(prefix, i), { qos: scenario.qos })
      if (granted.some((g) => g.qos !== scenario.qos)) {
        throw new Error(`subscriber ${i} was granted QoS ${granted.map((g) => g.qos).join(',')}, asked for ${scenario.qos}`)
      }
    }))
    const publishers = await connectAll(publisherCount, async (i) =>
      watch(await connectLoadClient(target.url, `${runId}-${scenario.name}-pub${i}`), `publisher ${i}`))

    const rss = new RssSampler(target.pid)
    const cpuBefore = target.pid === null ? null : readCpuSeconds(target.pid)
    const lag = monitorEventLoopDelay({ resolution: 10 })
    lag.enable()
    const watchdog = startWatchdog(tracker, stop, settings.timeout * 1000)
    const counters: PublisherCounters[] = perPublisher.map(() => ({ sent: 0, failed: 0 }))
    const startedAt = performance.now()
    try {
      const publishing = Promise.all(publishers.map((client, i) => runPublisher({
        client,
        topic: scenario.publishTopic(prefix, i),
        qos: scenario.qos,
        publisher: i,
        count: perPublisher[i] ?? 0,
        payloadBytes: settings.payload,
        window: windows[i] ?? new Window(settings.inflight),
        signal: stop.signal
      }, counters[i] ?? { sent: 0, failed: 0 })))
      const aborted = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }))
      await Promise.race([tracker.done, aborted])
      const timedOut = tracker.delivered < tracker.expected && error === null && !watchdog.stalled
      stop.abort()
      await publishing
      const seconds = ((tracker.lastAt ?? performance.now()) - startedAt) / 1000
      const failed = counters.reduce((sum, c) => sum + c.failed, 0)
      if (failed > 0 && error === null) error = `${failed} publishes failed`
      if (watchdog.stalled && error === null) error = `nothing delivered for ${STALL_MS / 1000} s`
      const rssBytes = rss.stop()
      const cpuAfter = target.pid === null ? null : readCpuSeconds(target.pid)
      lag.disable()
      return {
        scenario: scenario.name,
        broker: target.name,
        round: 1,
        qos: scenario.qos,
        publishers: publisherCount,
        subscribers: subscriberCount,
        published: counters.reduce((sum, c) => sum + c.sent, 0),
        expected: tracker.expected,
        delivered: tracker.delivered,
        lost: tracker.lost,
        duplicates: tracker.duplicates,
        seconds,
        msgPerSec: seconds > 0 ? tracker.delivered / seconds : 0,
        p50Ms: tracker.latency.percentileMs(50),
        p99Ms: tracker.latency.percentileMs(99),
        maxMs: tracker.latency.percentileMs(100),
        rssMb: rssBytes === null ? null : rssBytes / 1024 / 1024,
        cpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
        generatorLagMs: lag.max / 1e6,
        timedOut,
        error: tracker.unexpected > 0 && error === null ? `${tracker.unexpected} unexpected payloads` : error
      }
    } finally {
      watchdog.clear()
      rss.stop()
      lag.disable()
    }
  } finally {
    interrupt?.removeEventListener('abort', onInterrupt)
    closing = true
    stop.abort()
    await Promise.all(clients.map((client) => closeLoadClient(client)))
  }
}

interface Watchdog {
  readonly stalled: boolean
  clear (): void
}

/**
 * Aborts `stop` at the deadline, or earlier when nothing has been delivered
 * for {@link STALL_MS}: a broker that dropped messages never completes.
 */
function startWatchdog (tracker: DeliveryTracker, stop: AbortController, timeoutMs: number): Watchdog {
  let stalled = false
  let lastDelivered = -1
  let quietSince = performance.now()
  const deadline = setTimeout(() => stop.abort(), timeoutMs)
  const check = setInterval(() => {
    if (tracker.delivered !== lastDelivered) {
      lastDelivered = tracker.delivered
      quietSince = performance.now()
    } else if (performance.now() - quietSince > STALL_MS) {
      stalled = true
      stop.abort()
    }
  }, 250)
  return {
    get stalled () { return stalled },
    clear () {
      clearTimeout(deadline)
      clearInterval(check)
    }
  }
}

export type Progress = (line: string) => void

/**
 * Runs every selected scenario against every target, `options.rounds` times.
 * Targets take turns per scenario and round (A B A B), so a machine that
 * slows down during the run (thermal, other load) affects all brokers alike
 * instead of the last one.
 */
export async function runBenchmarks (targets: readonly BenchTarget[], options: BenchOptions, progress: Progress, interrupt?: AbortSignal): Promise<ScenarioResult[]> {
  const runId = `b${Date.now().toString(36)}${randomBytes(3).toString('hex')}`
  const selected = options.scenarios.map(findScenario)
  const runOne = (target: BenchTarget, scenario: Scenario, settings: Settings, id: string, round: number): Promise<ScenarioResult> =>
    options.generator === 'mqload'
      ? runMqloadScenario(target, scenario, settings, id, round, interrupt)
      : runScenario(target, scenario, settings, id, interrupt).then((r) => ({ ...r, round }))
  if (options.warmup > 0) {
    // Unreported: lets V8 compile the broker's (and the generator's) hot paths
    // and LevelDB open its first files before anything is measured.
    for (const target of targets) {
      for (const scenario of selected) {
        progress(`warm-up ${scenario.name} on ${target.name}`)
        interrupt?.throwIfAborted()
        await runOne(target, scenario, { ...options, messages: Math.min(options.warmup, options.messages) }, `${runId}w`, 0)
      }
    }
  }
  const results: ScenarioResult[] = []
  for (const scenario of selected) {
    for (let round = 1; round <= options.rounds; round++) {
      for (const target of targets) {
        interrupt?.throwIfAborted()
        progress(`${scenario.name} on ${target.name}${options.rounds > 1 ? ` (round ${round})` : ''} ...`)
        // A failed run (broker refused the connection, say) is a row in the
        // table, not the end of the benchmark: the other results still count.
        const result = await runOne(target, scenario, options, runId, round)
          .catch((err: unknown) => failedResult(target, scenario, options, round, err))
        progress(`  ${Math.round(result.msgPerSec)} msg/s, ${result.delivered}/${result.expected} delivered in ${result.seconds.toFixed(2)} s${result.error === null ? '' : ` (${result.error})`}`)
        results.push(result)
      }
    }
  }
  return results
}

function failedResult (target: BenchTarget, scenario: Scenario, settings: Settings, round: number, err: unknown): ScenarioResult {
  const subscribers = scenario.subscribers(settings)
  const copies = scenario.copiesPerMessage(subscribers)
  const expected = planPublishes(settings.messages, scenario.publishers(settings), copies).reduce((a, b) => a + b, 0) * copies
  return {
    scenario: scenario.name,
    broker: target.name,
    round,
    qos: scenario.qos,
    publishers: scenario.publishers(settings),
    subscribers,
    published: 0,
    expected,
    delivered: 0,
    lost: expected,
    duplicates: 0,
    seconds: 0,
    msgPerSec: 0,
    p50Ms: null,
    p99Ms: null,
    maxMs: null,
    rssMb: null,
    cpuSeconds: null,
    generatorLagMs: 0,
    timedOut: false,
    error: err instanceof Error ? err.message : String(err)
  }
}
