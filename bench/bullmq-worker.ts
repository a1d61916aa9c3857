// A BullMQ worker process of `npm run bench:tasks --compare bullmq`: one
// Worker with the given concurrency (BullMQ runs it on one connection plus
// one for blocking reads), a no-op processor.
import { Worker } from 'bullmq'
import { configFromArgv, exitWithParent, heard, tell, type WorkerConfig } from './task-ipc.js'
import { redisConnection } from './bullmq-redis.js'

const config = configFromArgv<WorkerConfig>()
let processed = 0
const worker = new Worker(config.name, async () => {
  processed++
  return null
}, { connection: redisConnection(config.endpoint), concurrency: config.concurrency })
worker.on('error', (err) => process.stderr.write(`bullmq worker ${config.index}: ${err.message}\n`))
exitWithParent(() => worker.close())
await worker.waitUntilReady()
await tell({ kind: 'ready' })
await heard('stop')
// close() waits for the running jobs to finish.
await worker.close()
await tell({ kind: 'stopped', processed })
process.exit(0)
