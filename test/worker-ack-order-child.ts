// A worker in its own process for test/worker-connection.test.ts, which
// SIGKILLs it while a slow task holds back the PUBACKs of finished ones:
//   node --import tsx test/worker-ack-order-child.ts <url> <concurrency>
// Prints "ready" once subscribed, "started <taskId>" for each task it takes
// and "completed <taskId>" once a task's result is published. A task of
// width 1 never finishes; any other returns at once.
import { connect } from '../client/client.js'
import { createWorker } from '../client/worker.js'
import { exitWithParent } from './helpers/child-process.js'

const [url, concurrency = '1'] = process.argv.slice(2)
if (url === undefined) throw new Error('usage: worker-ack-order-child.ts <url> [concurrency]')
exitWithParent()
const client = await connect(url, { reconnectPeriod: 0 })
const worker = await createWorker(client, 'thumbnail', (payload, ctx) => {
  process.stdout.write(`started ${ctx.id}\n`)
  return payload.width === 1 ? new Promise(() => undefined) : payload.width
}, { concurrency: Number(concurrency), clientId: 'ack-order-child' })
worker.on('completed', (e) => process.stdout.write(`completed ${e.envelope.id}\n`))
process.stdout.write('ready\n')
