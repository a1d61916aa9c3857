// A worker in its own process, for tests that SIGKILL it mid-task (see
// ./worker-process.ts, which starts it):
//   node --import tsx test/helpers/worker-child.ts <url> [concurrency]
// Prints "ready" once subscribed, then "started <taskId> <deliveryCount>" for
// each task it takes; its handler never finishes.
import { connect } from '../../client/client.js'
import { createWorker } from '../../client/worker.js'
import { exitWithParent } from './child-process.js'

const [url, concurrency = '1'] = process.argv.slice(2)
if (url === undefined) throw new Error('usage: worker-child.ts <url> [concurrency]')
exitWithParent()
const client = await connect(url, { reconnectPeriod: 0 })
await createWorker(client, 'thumbnail', (_payload, ctx) => {
  process.stdout.write(`started ${ctx.id} ${ctx.deliveryCount}\n`)
  return new Promise(() => undefined)
}, { concurrency: Number(concurrency) })
process.stdout.write('ready\n')
