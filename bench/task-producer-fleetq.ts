// The fleetq producer process of `npm run bench:tasks`: submits thumbnail
// tasks through the client library and awaits each one's result, which the
// broker routes back to this client (docs/tasks.md).
import { connect, type Client, type TaskHandle } from '../client/index.js'
import { configFromArgv, exitWithParent, heard, tell, type ProducerConfig } from './task-ipc.js'
import { TaskLoad, thumbnailPayload, type Submitter } from './task-load.js'

type SubmitMany = (type: 'thumbnail', payloads: Array<ReturnType<typeof thumbnailPayload>>) => Promise<TaskHandle[]>

const config = configFromArgv<ProducerConfig>()
const client = await connect(config.endpoint, { clientId: `${config.name}-producer` })
exitWithParent(() => client.close())

/** `submitMany` where the client has it (bulk submit, like BullMQ's addBulk), else null. */
function submitManyOf (c: Client): SubmitMany | null {
  const candidate = (c as unknown as { submitMany?: unknown }).submitMany
  return typeof candidate === 'function' ? (candidate as SubmitMany).bind(c) : null
}

function submitter (batch: number): Submitter {
  const track = (handle: TaskHandle, settled: (k: number, ok: boolean) => void, k: number): void => {
    handle.result().then(() => settled(k, true), () => settled(k, false))
  }
  if (batch === 1) {
    return async (first, _count, settled) => {
      track(await client.submit('thumbnail', thumbnailPayload(first)), settled, 0)
    }
  }
  const submitMany = submitManyOf(client)
  if (submitMany === null) throw new Error('this client has no submitMany(): run fleetq without --batch, or with the bulk submit landed')
  return async (first, count, settled) => {
    const payloads = Array.from({ length: count }, (_, k) => thumbnailPayload(first + k))
    const handles = await submitMany('thumbnail', payloads)
    handles.forEach((handle, k) => track(handle, settled, k))
  }
}

try {
  const submit = submitter(config.plan.batch)
  // Unmeasured: loads the schemas, subscribes to the results, and lets V8
  // compile the hot paths of producer, broker and workers alike.
  if (config.warmup > 0) {
    const warm = await new TaskLoad({ ...config.plan, tasks: config.warmup, rate: 0, maxPending: 0 }).run(submit)
    if (warm.error !== null || warm.completed !== config.warmup) throw new Error(`warm-up: ${warm.completed}/${config.warmup} completed (${warm.error ?? 'some failed'})`)
  }
  await tell({ kind: 'ready' })
  await heard('start')
  await tell(await new TaskLoad(config.plan).run(submit))
} catch (err) {
  process.stderr.write(`fleetq producer: ${(err as Error).stack ?? String(err)}\n`)
  process.exitCode = 1
} finally {
  await client.close()
}
