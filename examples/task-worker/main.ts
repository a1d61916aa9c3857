// Task worker: a producer submits validated thumbnail tasks, two workers
// compete for them, a failing task is retried, an invalid one is refused by
// submit() and, sent raw with mosquitto_pub, dead-lettered by the broker.
//   npm start                       (a broker on mqtt://localhost:1883)
//   npm run example:task-worker     (FLEETQ_URL=mqtt://host:port to point elsewhere)
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { connect, TaskValidationError } from '../../client/index.js'
import { startThumbnailWorker } from './workers.js'

const url = new URL(process.env['FLEETQ_URL'] ?? 'mqtt://localhost:1883')
const log = (line: string): void => { console.log(line) }

const producer = await connect(url.href, { clientId: 'producer' })
const workerClients = await Promise.all(['worker-a', 'worker-b'].map((id) => connect(url.href, { clientId: id })))
const workers = await Promise.all(workerClients.map((c, i) => startThumbnailWorker(c, i === 0 ? 'worker-a' : 'worker-b', log)))

// Dead letters wait in the broker's durable `dead-letters` group.
const deadLetters: string[] = []
await producer.subscribe('$share/dead-letters/$fleetq/dead/+', (message) => {
  const record = message.json<{ reason: string, clientId: string, issues?: Array<{ path: string, message: string }> }>()
  deadLetters.push(`${record.reason} from ${record.clientId}: ${record.issues?.map((i) => `${i.path} ${i.message}`).join('; ') ?? ''}`)
}, { qos: 1 })

// 1. Six valid tasks, one of which fails once and is retried.
const urls = ['a', 'b', 'c', 'd', 'e', 'flaky'].map((n) => `https://images.example.com/${n}.jpg`)
const handles = await Promise.all(urls.map((imageUrl) => producer.submit('thumbnail', { imageUrl, width: 320, height: 240 }, {
  backoff: { type: 'fixed', delayMs: 100 }
})))
const results = await Promise.all(handles.map((h) => h.result()))
log(`completed ${results.length} thumbnails`)

// 2. An invalid task never leaves the producer...
try {
  // @ts-expect-error: width must be a number (the type comes from schemas/tasks/thumbnail.schema.json)
  await producer.submit('thumbnail', { imageUrl: 'https://images.example.com/x.jpg', width: 'wide', height: 240 })
} catch (err) {
  if (!(err instanceof TaskValidationError)) throw err
  log(`refused by submit(): ${err.issues.map((i) => `${i.path} ${i.message}`).join('; ')}`)
}

// 3. ...and the same from a device using plain MQTT is dead-lettered at the broker.
await promisify(execFile)('mosquitto_pub', ['-h', url.hostname, '-p', url.port || '1883', '-q', '1', '-i', 'camera-7',
  '-t', 'tasks/thumbnail', '-m', JSON.stringify({ imageUrl: 'https://images.example.com/y.jpg', width: 'wide', height: 240 })])
const deadline = Date.now() + 10_000
while (deadLetters.length === 0) {
  if (Date.now() > deadline) throw new Error('no dead letter within 10 s')
  await new Promise((resolve) => setTimeout(resolve, 20))
}
log(`dead letter: ${deadLetters[0] ?? ''}`)

const byWorker = new Map<string, number>()
for (const r of results as Array<{ worker: string }>) byWorker.set(r.worker, (byWorker.get(r.worker) ?? 0) + 1)
log(`by worker: ${[...byWorker].map(([w, n]) => `${w}=${n}`).sort().join(', ')}`)

await Promise.all(workers.map((w) => w.close()))
await Promise.all([producer, ...workerClients].map((c) => c.close()))
