// Drain against live delivery rate of a persistent-session QoS 1 subscriber
// (docs/durability.md, "Draining a backlog"): live, a stored backlog, and a
// stored backlog while a second publisher goes on at full speed.
// Run: npx tsx bench/queue-drain.ts [N]   (default 20,000 messages)
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { createBroker } from '../broker/index.js'

const N = Number(process.argv[2] ?? 20000)
const dataDir = await mkdtemp(join(tmpdir(), 'drain-'))
const broker = await createBroker({ port: 0, dataDir, logLevel: 'silent', maxQueuedPerClient: 0 })
const url = `mqtt://127.0.0.1:${broker.port}`

async function connect (opts: mqtt.IClientOptions): Promise<mqtt.MqttClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, ...opts })
  await new Promise<void>((resolve, reject) => { c.once('connect', () => resolve()); c.once('error', reject) })
  return c
}
async function publishAll (pub: mqtt.MqttClient, n: number, tag: string): Promise<void> {
  let next = 0
  const window = 100
  await Promise.all(Array.from({ length: window }, async () => {
    while (next < n) { const i = next++; await pub.publishAsync(`soak/${tag}`, String(i), { qos: 1 }) }
  }))
}
const pub = await connect({ clientId: 'pub' })
let sub = await connect({ clientId: 'sub', clean: false })
await sub.subscribeAsync('soak/#', { qos: 1 })

// live
let got = 0
let done: () => void = () => {}
const onMsg = (): void => { if (++got === N) done() }
sub.on('message', onMsg)
let t0 = performance.now()
await Promise.all([publishAll(pub, N, 'live'), new Promise<void>((r) => { done = r })])
const live = N / ((performance.now() - t0) / 1000)

// backlog
await sub.endAsync()
await publishAll(pub, N, 'backlog')
got = 0
t0 = performance.now()
sub = mqtt.connect(url, { clientId: 'sub', clean: false, reconnectPeriod: 0 })
sub.on('message', onMsg)
await new Promise<void>((r) => { done = r })
const drain = N / ((performance.now() - t0) / 1000)

// backlog again, drained while a publisher keeps publishing at full speed
await sub.endAsync()
await publishAll(pub, N, 'backlog')
got = 0
let backlogGot = 0
const pub2 = await connect({ clientId: 'pub2' })
let loading = true
const load = (async () => { let i = 0; while (loading) { await Promise.all(Array.from({ length: 100 }, async () => pub2.publishAsync('soak/load', String(i++), { qos: 1 }))) } })()
t0 = performance.now()
sub = mqtt.connect(url, { clientId: 'sub', clean: false, reconnectPeriod: 0 })
await new Promise<void>((r) => { sub.on('message', (topic) => { if (topic === 'soak/backlog' && ++backlogGot === N) r() }) })
const drainLoaded = N / ((performance.now() - t0) / 1000)
loading = false
await load
console.log(JSON.stringify({ N, liveMsgPerS: Math.round(live), drainMsgPerS: Math.round(drain), drainUnderLoadMsgPerS: Math.round(drainLoaded), ratio: +(drain / live).toFixed(2) }))
await pub2.endAsync()
await sub.endAsync(); await pub.endAsync(); await broker.close(); await rm(dataDir, { recursive: true, force: true })
