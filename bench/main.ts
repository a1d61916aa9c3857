import { readFileSync } from 'node:fs'
import { externalTarget, fleetqVariants, startCompareTargets, startFleetq, type BenchTarget } from './brokers.js'
import { mosquittoVersion } from './mosquitto.js'
import { parseBenchArgs, usage, UsageError, type BenchOptions } from './options.js'
import { ensureMqload } from './mqload.js'
import { describeEnvironment, formatHeader, formatSummary, formatTable, formatWarnings, loadAverage, summarise } from './report.js'
import { runBenchmarks } from './runner.js'

/**
 * The benchmark command line, shared by `npm run bench` and
 * `tsx bench/compare.ts`. Returns the exit status: 0 when every expected
 * message arrived, 1 when some were lost or a run failed, 2 on bad usage.
 */
export async function main (argv: string[]): Promise<number> {
  let options: BenchOptions | 'help'
  try {
    options = parseBenchArgs(argv)
  } catch (err) {
    // parseArgs throws TypeErrors with a code for unknown or malformed flags.
    if (err instanceof UsageError || (err instanceof TypeError && 'code' in err)) {
      process.stderr.write(`${err.message}\n\n${usage}`)
      return 2
    }
    throw err
  }
  if (options === 'help') {
    process.stdout.write(usage)
    return 0
  }

  const targets: BenchTarget[] = []
  const closeAll = (): Promise<unknown> => Promise.allSettled(targets.map((t) => t.close()))
  // Ctrl-C must not leave a broker running: close what we started, then exit.
  const interrupt = new AbortController()
  const onSignal = (signal: NodeJS.Signals): void => {
    process.stderr.write(`\n${signal}: stopping brokers\n`)
    interrupt.abort()
    void closeAll().finally(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    // Built before any broker starts, so a missing compiler fails fast.
    if (options.generator === 'mqload') await ensureMqload()
    if (options.compare) targets.push(...await startCompareTargets(options.persistence, options.metrics))
    else if (options.url !== null) targets.push(externalTarget(options.url, options.pid))
    else for (const metrics of fleetqVariants(options.metrics)) targets.push(await startFleetq(options.persistence, metrics))

    const env = describeEnvironment(await describeBrokers(targets, options))
    const progress = (line: string): void => { process.stderr.write(line + '\n') }
    progress(formatHeader(options, env))
    const results = await runBenchmarks(targets, options, progress, interrupt.signal)
    env.loadAverageEnd = loadAverage()
    const summary = summarise(results)
    if (options.json) {
      process.stdout.write(JSON.stringify({ options, environment: env, summary, results }, null, 2) + '\n')
    } else {
      const warnings = formatWarnings(results)
      process.stdout.write('\n' + formatHeader(options, env) + '\n\n' + formatTable(results) + '\n' +
        (options.rounds > 1 || targets.length > 1 ? '\n' + formatSummary(summary) + '\n' : '') +
        (warnings === '' ? '' : '\n' + warnings + '\n'))
    }
    return results.every((r) => r.lost === 0 && r.error === null) ? 0 : 1
  } catch (err) {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  } finally {
    await closeAll()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

async function describeBrokers (targets: readonly BenchTarget[], options: BenchOptions): Promise<string[]> {
  const fleetqVersion = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
  return Promise.all(targets.map(async (t) => {
    if (t.name === 'fleetq') return `fleetq ${fleetqVersion} (${options.persistence} persistence, child process)`
    if (t.name === 'fleetq+metrics') return `fleetq ${fleetqVersion} (${options.persistence} persistence, child process, HTTP listener, /metrics scraped every 1 s)`
    if (t.name === 'mosquitto') return (await mosquittoVersion()) ?? 'mosquitto'
    return `${t.url}${t.pid === null ? '' : ` (pid ${t.pid})`}`
  }))
}
