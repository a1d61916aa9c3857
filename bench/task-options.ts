import { parseArgs } from 'node:util'
import { taskSystemNames } from './task-systems.js'

export interface TaskBenchOptions {
  /** Tasks per run; with --rate, rate × seconds. */
  tasks: number
  workers: number
  concurrency: number
  /** Most submits awaiting acknowledgement. */
  window: number
  /** Most tasks submitted and not completed; 0 = no bound. */
  maxPending: number
  /** Tasks per second, evenly spaced; 0 = as fast as the window allows. */
  rate: number
  /** Tasks per submitMany()/addBulk() call, for the -bulk systems. */
  batch: number
  /** Tasks submitted and awaited before each measured run, unreported. */
  warmup: number
  systems: string[]
  /** Every system runs once per round, in the order given: A B C A B C. */
  rounds: number
  timeoutSeconds: number
  json: boolean
}

export const taskUsage = `Usage: npm run bench:tasks -- [options]

Tasks end to end: a producer process submits thumbnail tasks, worker processes
run them with a no-op handler, the producer awaits every result.

  --tasks <n>         tasks per run (default 20000)
  --workers <n>       worker processes (default 4)
  --concurrency <n>   tasks at once per worker process (default 8)
  --window <n>        most submits awaiting acknowledgement (default 100)
  --max-pending <n>   most tasks submitted and not yet completed; 0 = no bound (default 0)
  --rate <n>          steady rate in tasks/s instead of as fast as possible
  --seconds <n>       with --rate: run this long (tasks = rate x seconds; default 20)
  --batch <n>         tasks per submitMany()/addBulk() call in the -bulk systems (default 50)
  --warmup <n>        tasks awaited before each measured run (default 5000)
  --compare bullmq    run fleetq, bullmq (Redis, no persistence) and bullmq-aof
  --systems <a,b>     pick systems: ${taskSystemNames.join(', ')}
  --rounds <n>        run every system n times, alternating (default 1)
  --timeout <s>       upper bound per run (default 180)
  --json              print options, environment and results as JSON
  --help`

function positive (name: string, text: string | undefined, min = 1): number {
  const n = Number(text)
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${String(text)}`)
  return n
}

export function parseTaskOptions (argv: string[]): TaskBenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      tasks: { type: 'string', default: '20000' },
      workers: { type: 'string', default: '4' },
      concurrency: { type: 'string', default: '8' },
      window: { type: 'string', default: '100' },
      'max-pending': { type: 'string', default: '0' },
      rate: { type: 'string', default: '0' },
      seconds: { type: 'string', default: '20' },
      batch: { type: 'string', default: '50' },
      warmup: { type: 'string', default: '5000' },
      compare: { type: 'string' },
      systems: { type: 'string' },
      rounds: { type: 'string', default: '1' },
      timeout: { type: 'string', default: '180' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help) return 'help'
  if (values.compare !== undefined && values.compare !== 'bullmq') throw new Error(`--compare supports bullmq, got ${values.compare}`)
  const systems = values.systems !== undefined
    ? values.systems.split(',').map((s) => s.trim()).filter((s) => s !== '')
    : values.compare === 'bullmq' ? ['fleetq', 'bullmq', 'bullmq-aof'] : ['fleetq']
  const unknown = systems.filter((s) => !taskSystemNames.includes(s))
  if (unknown.length > 0 || systems.length === 0) throw new Error(`--systems: unknown ${unknown.join(', ') || '(none given)'}; known: ${taskSystemNames.join(', ')}`)
  const rate = positive('rate', values.rate, 0)
  return {
    tasks: rate > 0 ? rate * positive('seconds', values.seconds) : positive('tasks', values.tasks),
    workers: positive('workers', values.workers),
    concurrency: positive('concurrency', values.concurrency),
    window: positive('window', values.window),
    maxPending: positive('max-pending', values['max-pending'], 0),
    rate,
    batch: positive('batch', values.batch),
    warmup: positive('warmup', values.warmup, 0),
    systems,
    rounds: positive('rounds', values.rounds),
    timeoutSeconds: positive('timeout', values.timeout),
    json: values.json
  }
}
