// Scaling curves: fleetq against Mosquitto (payload size, subscribers per
// topic, idle connections) and against BullMQ on Redis (queue depth), a short
// run per point, each point's comparison from the same run.
// The command line of `npm run bench:curves` (bench/curves.ts); docs/benchmarks.md
// "Scaling curves" says what each figure means.
import { startCompareTargets, type BenchTarget } from './brokers.js'
import { runConnectionsCurve, connectionsMetrics } from './curves-connections.js'
import { messagingMetrics, runMessagingCurve } from './curves-messaging.js'
import { curveDefaults, curvesUsage, parseCurvesArgs, pointsOf, type CurveName, type CurvesOptions } from './curves-options.js'
import { depthMetrics, runDepthCurve } from './curves-queue.js'
import { formatCurve, type Metric, type PointResult } from './curves-report.js'
import { UsageError } from './options.js'
import { ensureMqload } from './mqload.js'
import { describeEnvironment, loadAverage } from './report.js'

const titles: Record<CurveName, { label: string, baseline: string, metrics: (o: CurvesOptions) => readonly Metric[], describe: (o: CurvesOptions) => string }> = {
  payload: {
    label: 'payload B',
    baseline: 'mosquitto',
    metrics: () => messagingMetrics.payload,
    describe: (o) => `QoS ${o.qos} fan-in, ${o.publishers} publishers → 1 subscriber, ${o.messages} deliveries per point (at most 256 MiB), ${o.inflight} in flight per publisher`
  },
  subscribers: {
    label: 'subscribers',
    baseline: 'mosquitto',
    metrics: () => messagingMetrics.subscribers,
    describe: (o) => `QoS ${o.qos} fan-out, 1 publisher → N subscribers on its topic, 64 B, ${o.messages} deliveries per point`
  },
  depth: {
    label: 'tasks waiting',
    baseline: 'bullmq',
    metrics: () => depthMetrics,
    describe: (o) => `after a 2,000-task warm-up, N thumbnail tasks enqueued with the ${o.workers} worker processes × concurrency ${o.concurrency} paused, then drained (timed for at most ${o.drainSeconds} s); BullMQ on Redis without AOF`
  },
  connections: {
    label: 'idle connections',
    baseline: 'mosquitto',
    metrics: () => connectionsMetrics,
    describe: (o) => `N idle connections (clean, keep-alive 60, raw sockets), then a QoS 1 pair: 10,000 messages as fast as it goes (msg/s) and ${o.pairSeconds} s at 1,000 msg/s (p99); a fresh broker per point`
  }
}

async function runCurve (curve: CurveName, o: CurvesOptions, progress: (line: string) => void, started: BenchTarget[]): Promise<PointResult[]> {
  const points = pointsOf(curve, o)
  progress(`${curve}: ${curveDefaults[curve].unit} ${points.join(', ')}; ${titles[curve].describe(o)}`)
  if (curve === 'depth') return runDepthCurve(points, o, progress)
  if (curve === 'connections') return runConnectionsCurve(points, o, progress, started)
  // One fleetq and one Mosquitto for the whole curve, as `bench --compare`.
  const targets = await startCompareTargets('level')
  started.push(...targets)
  try {
    return await runMessagingCurve(curve, points, targets, o, progress)
  } finally {
    await Promise.allSettled(targets.map((t) => t.close()))
  }
}

export async function main (argv: string[]): Promise<number> {
  let options: CurvesOptions | 'help'
  try {
    options = parseCurvesArgs(argv)
  } catch (err) {
    if (err instanceof UsageError || (err instanceof TypeError && 'code' in err)) {
      process.stderr.write(`${err.message}\n\n${curvesUsage}`)
      return 2
    }
    throw err
  }
  if (options === 'help') {
    process.stdout.write(curvesUsage)
    return 0
  }
  const o = options
  const started: BenchTarget[] = []
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: stopping brokers\n`)
    void Promise.allSettled(started.map((t) => t.close())).finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const progress = (line: string): void => { process.stderr.write(line + '\n') }
  try {
    await ensureMqload()
    const env = describeEnvironment(['fleetq', 'mosquitto', 'bullmq'])
    progress(`machine: ${env.cpus} x ${env.cpuModel}, Node ${env.node}, load average ${env.loadAverage.toFixed(2)} at start`)
    const results: PointResult[] = []
    for (const curve of o.curves) results.push(...await runCurve(curve, o, progress, started))
    env.loadAverageEnd = loadAverage()
    if (o.json) {
      process.stdout.write(JSON.stringify({ options: o, environment: env, results }, null, 2) + '\n')
    } else {
      const tables = o.curves.map((curve) => `### ${curve}: ${titles[curve].describe(o)}\n\n` +
        formatCurve(titles[curve].label, titles[curve].baseline, titles[curve].metrics(o), results.filter((r) => r.curve === curve)))
      process.stdout.write(`\nmachine: ${env.cpus} x ${env.cpuModel}, Node ${env.node}, load average ${env.loadAverage.toFixed(2)} at start, ${env.loadAverageEnd.toFixed(2)} at end\n\n${tables.join('\n\n')}\n`)
    }
    return results.some((r) => r.failed) ? 1 : 0
  } catch (err) {
    process.stderr.write(`bench:curves failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
    return 1
  } finally {
    await Promise.allSettled(started.map((t) => t.close()))
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}
