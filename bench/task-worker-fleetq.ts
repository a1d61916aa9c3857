// A fleetq worker process of `npm run bench:tasks`: one client, one worker
// for the thumbnail type with the given concurrency, a no-op handler.
import { connect, createWorker } from '../client/index.js'
import { configFromArgv, exitWithParent, heard, tell, type WorkerConfig } from './task-ipc.js'

const config = configFromArgv<WorkerConfig>()
const client = await connect(config.endpoint, { clientId: `${config.name}-worker-${config.index}` })
exitWithParent(() => client.close())
let processed = 0
// The work itself is nothing: this measures the queue, not the handler.
await createWorker(client, 'thumbnail', async () => {
  processed++
  return null
}, { concurrency: config.concurrency })
await tell({ kind: 'ready' })
await heard('stop')
// close() lets running tasks finish, then disconnects.
await client.close()
await tell({ kind: 'stopped', processed })
process.exit(0)
