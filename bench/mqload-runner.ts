import type { BenchTarget } from './brokers.js'
import { runMqload, type MqloadResult } from './mqload.js'
import type { ScenarioResult, Settings } from './runner.js'
import type { Scenario } from './scenarios.js'
import { readCpuSeconds, RssSampler } from './stats.js'

/**
 * Messages per mqload publisher so that subscribers receive about
 * `deliveries` in all, as the mqtt.js runner plans them (bench/runner.ts):
 * a fan-out to 4 publishes a quarter as many.
 */
export function mqloadMessagesPerPublisher (deliveries: number, publishers: number, copiesPerMessage: number): number {
  return Math.max(1, Math.ceil(deliveries / copiesPerMessage / publishers))
}

/**
 * Runs one scenario against one broker with the C load generator. mqload
 * connects its subscribers, waits for every SUBACK, then publishes from one
 * thread per publisher; its topics are `<topic>/<publisher>` and its
 * subscribers use `<topic>/+` (or `$share/<group>/<topic>/+`), which gives
 * the same fan-in, fan-out and shared-queue shapes as bench/scenarios.ts.
 */
export async function runMqloadScenario (target: BenchTarget, scenario: Scenario, settings: Settings, runId: string, round: number, signal?: AbortSignal): Promise<ScenarioResult> {
  const publishers = scenario.publishers(settings)
  const subscribers = scenario.subscribers(settings)
  const copies = scenario.copiesPerMessage(subscribers)
  const perPublisher = mqloadMessagesPerPublisher(settings.messages, publishers, copies)
  const { hostname, port } = new URL(target.url)
  const rss = new RssSampler(target.pid)
  const cpuBefore = target.pid === null ? null : readCpuSeconds(target.pid)
  let result: MqloadResult
  try {
    result = await runMqload({
      host: hostname,
      port: Number(port),
      pubs: publishers,
      subs: subscribers,
      qos: scenario.qos,
      msgs: perPublisher,
      size: settings.payload,
      inflight: settings.inflight,
      timeout: settings.timeout,
      // A fresh topic per run: nothing from an earlier run can be counted.
      topic: `fleetq-bench/${runId}/${scenario.name}/${round}`,
      ...(scenario.shareGroup === undefined ? {} : { share: scenario.shareGroup })
    }, signal)
  } finally {
    rss.stop()
  }
  const cpuAfter = target.pid === null ? null : readCpuSeconds(target.pid)
  const rssBytes = rss.stop()
  const latency = (ms: number): number | null => (result.samples > 0 && ms >= 0 ? ms : null)
  return {
    scenario: scenario.name,
    broker: target.name,
    round,
    qos: scenario.qos,
    publishers,
    subscribers,
    published: perPublisher * publishers,
    expected: result.expected,
    delivered: result.received,
    lost: result.missing,
    duplicates: result.dups,
    seconds: result.seconds,
    msgPerSec: result.msgs_per_s,
    p50Ms: latency(result.p50_ms),
    p99Ms: latency(result.p99_ms),
    maxMs: latency(result.max_ms),
    rssMb: rssBytes === null ? null : rssBytes / 1024 / 1024,
    cpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
    // mqload's clients run in their own threads; there is no event loop to stall.
    generatorLagMs: 0,
    // mqload ends a run when nothing has arrived for 3 s or at --timeout.
    timedOut: result.missing > 0 && result.seconds >= settings.timeout,
    error: null
  }
}
