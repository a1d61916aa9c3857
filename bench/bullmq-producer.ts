// The BullMQ producer process of `npm run bench:tasks --compare bullmq`: adds
// jobs with Queue.add (or addBulk with --batch) and learns of completions as
// BullMQ's documentation shows, from a QueueEvents 'completed' listener.
// Job.waitUntilFinished does the same through the same QueueEvents stream,
// plus one state query per job; one listener and a map is its cheaper form.
import { Queue, QueueEvents } from 'bullmq'
import { configFromArgv, exitWithParent, type ProducerConfig } from './task-ipc.js'
import { runProducer, thumbnailPayload, type Submitter } from './task-load.js'
import { redisConnection } from './bullmq-redis.js'

const config = configFromArgv<ProducerConfig>()
const connection = redisConnection(config.endpoint)
const queue = new Queue(config.name, {
  connection,
  // Completed jobs are removed, as BullMQ advises for production queues: the
  // producer has the result from the event, and fleetq keeps no finished
  // task either. The event stream is trimmed to maxLen (10,000 entries by
  // default, about four per job); a producer that falls further behind than
  // that would never hear of the older completions, so it holds the run.
  defaultJobOptions: { removeOnComplete: true },
  streams: { events: { maxLen: Math.max(10_000, 8 * (config.plan.tasks + config.warmup)) } }
})
// From the start of the stream, not '$' (BullMQ's default, "from now"): the
// first XREAD may go out after the first jobs completed, and '$' would skip
// their events. The queue is new for this run, so the start is ours.
const events = new QueueEvents(config.name, { connection, lastEventId: '0' })
const close = async (): Promise<void> => { await Promise.allSettled([events.close(), queue.close()]) }
exitWithParent(close)

/** Completion callbacks by job id; a completion seen before add() resolved waits in `early`. */
const waiting = new Map<string, (ok: boolean) => void>()
const early = new Map<string, boolean>()
const settle = (jobId: string, ok: boolean): void => {
  const callback = waiting.get(jobId)
  if (callback === undefined) {
    early.set(jobId, ok)
    return
  }
  waiting.delete(jobId)
  callback(ok)
}
events.on('completed', ({ jobId }) => settle(jobId, true))
events.on('failed', ({ jobId }) => settle(jobId, false))
const expect = (jobId: string | undefined, callback: (ok: boolean) => void): void => {
  if (jobId === undefined) throw new Error('BullMQ returned a job without an id')
  const ok = early.get(jobId)
  if (ok === undefined) {
    waiting.set(jobId, callback)
  } else {
    early.delete(jobId)
    callback(ok)
  }
}

const submit: Submitter = config.plan.batch === 1
  ? async (first, _count, settled) => {
    const job = await queue.add('thumbnail', thumbnailPayload(first))
    expect(job.id, (ok) => settled(0, ok))
  }
  : async (first, count, settled) => {
    const jobs = await queue.addBulk(Array.from({ length: count }, (_, k) => ({ name: 'thumbnail', data: thumbnailPayload(first + k) })))
    jobs.forEach((job, k) => expect(job.id, (ok) => settled(k, ok)))
  }

await runProducer('bullmq producer', config, submit, close, () => Promise.all([queue.waitUntilReady(), events.waitUntilReady()]))
