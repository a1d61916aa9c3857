// Tasks end to end: a producer process submits tasks, worker processes run
// them with a no-op handler, and the producer awaits every result; fleetq
// and, with --compare bullmq, BullMQ on Redis with the same shape, each
// system alternating within one run. See docs/benchmarks.md#tasks-end-to-end.
//   npm run bench:tasks -- --compare bullmq [--tasks 20000 --rounds 2 --json]
//   npm run bench:tasks -- --compare bullmq --rate 200 --seconds 20
import { cpus, loadavg } from 'node:os'
import { redisVersion } from './bullmq-redis.js'
import { parseTaskOptions, taskUsage, type TaskBenchOptions } from './task-options.js'
import { bullmqVersion, formatLoad, formatRatioTable, formatTaskHeader, formatTaskTable, formatTaskWarnings, taskRatios, type TaskEnvironment } from './task-report.js'
import { runTaskSystem, type TaskRunResult } from './task-run.js'
import { taskSystems } from './task-systems.js'

let options: TaskBenchOptions
try {
  const parsed = parseTaskOptions(process.argv.slice(2))
  if (parsed === 'help') {
    console.log(taskUsage)
    process.exit(0)
  }
  options = parsed
} catch (err) {
  console.error(`${(err as Error).message}\n\n${taskUsage}`)
  process.exit(2)
}

const list = cpus()
const env: TaskEnvironment = {
  node: process.version,
  cpus: list.length,
  cpuModel: list[0]?.model.trim() ?? 'unknown',
  bullmq: bullmqVersion(),
  redis: redisVersion(),
  loadStart: loadavg(),
  loadEnd: []
}
// With --json, stdout is the JSON document only; progress goes to stderr.
const progress = (line: string): void => { (options.json ? console.error : console.log)(line) }
progress(formatTaskHeader(options, env))

const shape = {
  plan: { tasks: options.tasks, window: options.window, maxPending: options.maxPending, rate: options.rate, batch: options.batch, timeoutMs: options.timeoutSeconds * 1000 },
  workers: options.workers,
  concurrency: options.concurrency,
  warmup: options.warmup
}
const results: TaskRunResult[] = []
const failures: string[] = []
for (let round = 1; round <= options.rounds; round++) {
  for (const name of options.systems) {
    const system = taskSystems.find((s) => s.name === name)
    if (system === undefined) continue
    progress(`running ${name} (round ${round}), load average ${formatLoad(loadavg())}`)
    try {
      results.push(await runTaskSystem(system, shape, round))
    } catch (err) {
      failures.push((err as Error).message)
      progress(`failed: ${(err as Error).message}`)
    }
  }
}
env.loadEnd = loadavg()

const ratios = taskRatios(results)
if (options.json) {
  console.log(JSON.stringify({ options, environment: env, results, ratios, failures }, null, 2))
} else {
  console.log('')
  console.log(formatTaskTable(results))
  const ratioTable = formatRatioTable(ratios)
  if (ratioTable !== '') console.log(`\nfleetq ÷ the other (means over the rounds; above 1 is better for tasks/s, below 1 for the rest):\n${ratioTable}`)
  const warnings = formatTaskWarnings(results)
  if (warnings !== '') console.log(`\n${warnings}`)
  console.log(`\nload average at end: ${formatLoad(env.loadEnd)}`)
}
const complete = results.every((r) => r.error === null && r.completed === r.tasks)
process.exitCode = failures.length === 0 && complete ? 0 : 1
