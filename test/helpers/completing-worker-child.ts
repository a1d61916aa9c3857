// A worker in its own process that completes every task at once (a no-op
// handler, as in `npm run bench:tasks`), for tests that kill the broker under
// full task load (./completing-worker-process.ts starts it):
//   node --import tsx test/helpers/completing-worker-child.ts <url> <concurrency>
// Prints "ready" once subscribed, then "done <taskId>" for each task its
// handler finished.
import { connect } from '../../client/client.js'
import { createWorker } from '../../client/worker.js'
import { exitWithParent } from './child-process.js'

const [url, concurrency = '8'] = process.argv.slice(2)
if (url === undefined) throw new Error('usage: completing-worker-child.ts <url> [concurrency]')
exitWithParent()
const client = await connect(url, { reconnectPeriod: 0 })
// The broker's kill ends this process: there is nothing to reconnect to.
client.on('close', () => process.exit(0))
await createWorker(client, 'thumbnail', (_payload, ctx) => {
  process.stdout.write(`done ${ctx.id}\n`)
}, { concurrency: Number(concurrency) })
process.stdout.write('ready\n')
