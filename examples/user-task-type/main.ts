// Your own task type: the broker learns `sensor-calibration` from
// schemas/sensor-calibration.schema.json, named in fleetq.json
// (`tasks.schemasDir`). A device submits with plain mosquitto_pub; the broker
// validates, wraps and queues a good payload for the worker and dead-letters
// a bad one with the reason.
//   npm run example:user-task-type
// It starts its own broker, as `npm start -- --config examples/user-task-type/fleetq.json`
// would (on a free port, in memory); see README.md next to this file.
import { execFile, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { connect, createWorker, TaskSchemas, type GateDeadLetter } from '../../client/index.js'
// The payload types, generated from the schemas folder: npm run gen:types -- --dir ... (README.md).
import type { SensorCalibrationPayload } from './generated/task-types.js'

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url))
const log = (line: string): void => { console.log(line) }

// 1. The broker: the real CLI, configured by fleetq.json alone (plus a free port).
const broker = await startBroker(['--config', here('fleetq.json'), '--port', '0'])
const url = broker.url
log('broker started with tasks.schemasDir = schemas/ (sensor-calibration.schema.json)')

// 2. A worker. Its client checks payloads against the same folder.
const schemas = await TaskSchemas.load({ dir: here('schemas'), includeExamples: false })
const client = await connect(url.href, { clientId: 'calibration-service', schemas })
const received: SensorCalibrationPayload[] = []
let completed = 0
const worker = await createWorker(client, 'sensor-calibration', async (payload, task) => {
  // `payload` is a SensorCalibrationPayload: generated/task-types.ts adds it to TaskPayloads.
  received.push(payload)
  log(`worker got sensor-calibration from ${task.envelope.producer ?? '?'}: sensor ${payload.sensorId}, offset ${payload.offset}, scale ${payload.scale ?? 1}`)
  return { applied: true }
})
worker.on('completed', () => { completed++ })

// Dead letters wait in the broker's durable `dead-letters` group.
const deadLetters: GateDeadLetter[] = []
await client.subscribe('$share/dead-letters/$fleetq/dead/+', (message) => { deadLetters.push(message.json<GateDeadLetter>()) }, { qos: 1 })

// 3. A device submits with mosquitto_pub: the bare payload, QoS 1.
const pub = (clientId: string, payload: unknown): Promise<unknown> => promisify(execFile)('mosquitto_pub',
  ['-h', url.hostname, '-p', url.port, '-q', '1', '-i', clientId, '-t', 'tasks/sensor-calibration', '-m', JSON.stringify(payload)])
await pub('thermostat-12', { sensorId: 't-17', offset: 0.4, scale: 1.02 })
await waitFor(() => completed === 1, 'the worker to complete the task')

// 4. A payload the schema refuses never reaches the worker.
await pub('thermostat-12', { sensorId: 't-17', offset: 'high' })
await waitFor(() => deadLetters.length === 1, 'the dead letter')
const dead = deadLetters[0]!
log(`dead letter on $fleetq/dead/${dead.taskType}: ${dead.reason} from ${dead.clientId ?? '?'}: ${dead.issues.map((i) => `${i.path} ${i.message}`).join('; ')}`)
log(`worker ran ${received.length} task`)

await worker.close()
await client.close()
await broker.stop()
log('broker stopped')

// ---------------------------------------------------------------------------

/** Starts `fleetq broker <args>` from this checkout; resolves once it listens. */
async function startBroker (args: string[]): Promise<{ url: URL, stop: () => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), here('../../broker/cli.ts'), 'broker', ...args], {
    stdio: ['ignore', 'inherit', 'pipe']
  })
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)))
  const stop = async (): Promise<void> => {
    child.kill('SIGTERM')
    const code = await exited
    if (code !== 0) throw new Error(`the broker exited with ${String(code)}`)
  }
  const lines: string[] = []
  const url = await new Promise<URL>((resolve, reject) => {
    createInterface({ input: child.stderr }).on('line', (line) => {
      lines.push(line)
      // The broker logs pino JSON lines on stderr; 'broker listening' has the URL.
      const entry = line.startsWith('{') ? JSON.parse(line) as { msg?: string, url?: string } : {}
      if (entry.msg === 'broker listening' && entry.url !== undefined) resolve(new URL(entry.url))
    })
    void exited.then((code) => reject(new Error(`the broker exited with ${String(code)}:\n${lines.join('\n')}`)))
  })
  return { url, stop }
}

async function waitFor (check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
