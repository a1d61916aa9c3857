// Scheduling: a device command sent for later, a delayed task, a refused
// delay, and a periodic heartbeat managed at runtime from the client.
//   npm start                      (a broker on mqtt://localhost:1883)
//   npm run example:scheduling     (FLEETQ_URL=mqtt://host:port to point elsewhere)
import { connect, createWorker, ScheduleError } from '../../client/index.js'

const url = new URL(process.env['FLEETQ_URL'] ?? 'mqtt://localhost:1883')
const log = (line: string): void => { console.log(line) }
const since = (start: number): string => `${((performance.now() - start) / 1000).toFixed(1)} s`

const client = await connect(url.href, { clientId: 'scheduling-example' })

// 1. A command the broker holds for a second (it survives a broker restart meanwhile).
let commandArrived!: () => void
const command = new Promise<void>((resolve) => { commandArrived = resolve })
await client.subscribe('fleet/site1/dev7/cmd', (m) => { log(`device got "${m.payload.toString()}" after ${since(start)}`); commandArrived() }, { qos: 1 })
const start = performance.now()
await client.publish('fleet/site1/dev7/cmd', 'reboot', { qos: 1, delay: 1000 })
await command

// 2. A task workers see only after its delay.
const worker = await createWorker(client, 'thumbnail', (payload) => `rendered ${payload.width}x${payload.height}`)
const task = await client.submit('thumbnail', { imageUrl: 'https://images.example.com/later.jpg', width: 64, height: 48 }, { delay: 500 })
log(`delayed task: ${String(await task.result())} after ${since(start)}`)

// 3. A delay the broker cannot honour is acknowledged, dead-lettered and counted, never silently dropped.
let deadLetterArrived!: () => void
const deadLetter = new Promise<void>((resolve) => { deadLetterArrived = resolve })
await client.subscribe('$share/dead-letters/$fleetq/dead/$delayed', (m) => {
  const record = m.json<{ refusal: string, topic: string }>()
  log(`dead letter: ${record.refusal} for ${record.topic}`)
  deadLetterArrived()
}, { qos: 1 })
await client.publish('$delayed/soon/fleet/site1/dev7/cmd', 'reboot', { qos: 1 })
await deadLetter

// 4. A periodic heartbeat every second, shown with its next run, then removed.
let beats = 0
let twoBeatsArrived!: () => void
const twoBeats = new Promise<void>((resolve) => { twoBeatsArrived = resolve })
await client.subscribe('fleet/heartbeat', () => { if (++beats === 2) twoBeatsArrived() }, { qos: 1 })
const heartbeat = await client.schedules.upsert({ name: 'heartbeat', cron: '* * * * * *', topic: 'fleet/heartbeat', payload: { ok: true } })
log(`schedule ${heartbeat.name} (${heartbeat.cron}, ${heartbeat.timezone}) next run ${heartbeat.nextRunAt === null ? 'never' : 'set'}`)
await twoBeats
log(`heartbeat fired ${beats} times`)
await client.schedules.remove('heartbeat')

// 5. A schedule that cannot work is refused up front.
try {
  await client.schedules.upsert({ name: 'nightly', cron: '30 2 * * *', timezone: 'Europe/Atlantis', topic: 'ops/nightly' })
} catch (err) {
  if (!(err instanceof ScheduleError)) throw err
  log(`refused: ${err.code}`)
}
log(`schedules left: ${(await client.schedules.list()).length}`)

await worker.close()
await client.close()
