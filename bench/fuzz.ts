// Fuzz harness (docs/mqtt-adapter.md, "Fuzzing"): random and mutated MQTT
// packets over many raw TCP connections while a well-behaved mqtt.js pair
// exchanges numbered QoS 1 messages. The broker must stay up and the pair
// must lose nothing.
//
// Usage: npm run fuzz -- --packets N [--connections C] [--seed S] [--url mqtt://host:port]
// Without --url it starts bench/fleetq-server.ts as a child process (LevelDB
// in a temporary directory). Prints one JSON line; exits 1 on a crash or a
// loss. Each connection's packets come from a PRNG seeded with (seed,
// connection number): the same seed replays the same byte strings.
import { readFileSync } from 'node:fs'
import { connect as tcpConnect, type Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import mqtt, { type MqttClient } from 'mqtt'
import { spawnBrokerChild, type BrokerChild } from './child.js'
import { connectPacket, int, mutatedPacket, prng, publishPacket, validPacket, type Rng } from './fuzz-packets.js'

const { values } = parseArgs({
  options: {
    packets: { type: 'string', default: '20000' },
    connections: { type: 'string', default: '32' },
    seed: { type: 'string' },
    url: { type: 'string' }
  }
})
const packets = Number(values.packets)
const concurrency = Number(values.connections)
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed)
for (const [name, value] of [['--packets', packets], ['--connections', concurrency], ['--seed', seed]] as const) {
  if (!Number.isSafeInteger(value) || value < (name === '--seed' ? 0 : 1)) {
    process.stderr.write(`${name} must be a ${name === '--seed' ? 'non-negative' : 'positive'} integer\n`)
    process.exit(2)
  }
}

interface Target { host: string, port: number, pid: number | null, child: BrokerChild | null }

async function startTarget (): Promise<Target> {
  if (values.url !== undefined) {
    const url = new URL(values.url)
    return { host: url.hostname, port: Number(url.port || 1883), pid: null, child: null }
  }
  const script = fileURLToPath(new URL('./fleetq-server.ts', import.meta.url))
  const child = spawnBrokerChild(process.execPath, ['--import', 'tsx', script, '--persistence', 'level'])
  const stdout = child.child.stdout
  if (stdout === null) throw new Error('the broker child has no stdout')
  const lines = createInterface({ input: stdout })
  const ready = await Promise.race([
    (async () => {
      for await (const line of lines) return JSON.parse(line) as { port: number, pid: number }
      throw new Error('the broker closed stdout before listening')
    })(),
    child.exited.then((how): never => { throw new Error(`the broker exited (${how}) before listening:\n${child.stderr()}`) })
  ])
  lines.close()
  return { host: '127.0.0.1', port: ready.port, pid: ready.pid, child }
}

/** The broker's resident set in MB, from /proc (Linux); null elsewhere or for --url. */
function rssMb (pid: number | null): number | null {
  if (pid === null) return null
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return match?.[1] === undefined ? null : Math.round(Number(match[1]) / 102.4) / 10
  } catch {
    return null
  }
}

/** The well-behaved pair: numbered QoS 1 messages, each awaited, each must arrive. */
class Pair {
  sent = 0
  readonly received = new Set<number>()
  errors: string[] = []
  #running = true
  #loop: Promise<void> = Promise.resolve()
  readonly #topic = `fuzz-pair/${seed}/${process.pid}`

  private constructor (readonly publisher: MqttClient, readonly subscriber: MqttClient) {}

  static async start (url: string): Promise<Pair> {
    const options = { protocolVersion: 4 as const, reconnectPeriod: 0, connectTimeout: 10_000, clean: true }
    const subscriber = await mqtt.connectAsync(url, { ...options, clientId: `fuzz-pair-sub-${process.pid}` })
    const publisher = await mqtt.connectAsync(url, { ...options, clientId: `fuzz-pair-pub-${process.pid}` })
    const pair = new Pair(publisher, subscriber)
    for (const [name, client] of [['publisher', publisher], ['subscriber', subscriber]] as const) {
      client.on('close', () => { if (pair.#running) pair.errors.push(`${name} disconnected`) })
      client.on('error', (err) => { pair.errors.push(`${name}: ${err.message}`) })
    }
    subscriber.on('message', (_topic, payload) => { pair.received.add(Number(payload.toString())) })
    await subscriber.subscribeAsync(pair.#topic, { qos: 1 })
    pair.#loop = pair.#publishLoop()
    return pair
  }

  async #publishLoop (): Promise<void> {
    while (this.#running) {
      const n = this.sent + 1
      try {
        await this.publisher.publishAsync(this.#topic, String(n), { qos: 1 })
        this.sent = n
      } catch (err) {
        this.errors.push(`publish ${n}: ${(err as Error).message}`)
        return
      }
    }
  }

  /** Stops publishing, then waits (bounded) for every message sent to arrive. */
  async finish (timeoutMs: number): Promise<number> {
    this.#running = false
    await this.#loop
    const deadline = Date.now() + timeoutMs
    while (this.missing() > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
    return this.missing()
  }

  missing (): number {
    let missing = 0
    for (let n = 1; n <= this.sent; n++) if (!this.received.has(n)) missing++
    return missing
  }

  async close (): Promise<void> {
    this.#running = false
    await Promise.all([this.publisher.endAsync(true), this.subscriber.endAsync(true)])
  }
}

/** A fresh client's publish/subscribe round trip: the broker still answers. */
async function answers (url: string): Promise<boolean> {
  let client: MqttClient | null = null
  const timeout = new Promise<false>((resolve) => setTimeout(() => resolve(false), 10_000).unref())
  const check = (async () => {
    client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, clientId: `fuzz-check-${process.pid}` })
    const topic = `fuzz-check/${process.pid}`
    const subscriber = client
    const got = new Promise((resolve) => subscriber.once('message', resolve))
    await client.subscribeAsync(topic, { qos: 1 })
    await client.publishAsync(topic, 'alive', { qos: 1 })
    await got
    return true
  })().catch(() => false)
  try {
    return await Promise.race([check, timeout])
  } finally {
    (client as MqttClient | null)?.end(true)
  }
}

/** What one connection sends: a CONNECT (usually valid), then valid, mutated and garbage packets. */
function plan (rng: Rng): Buffer[] {
  const list: Buffer[] = []
  const r = rng()
  list.push(r < 0.75 ? connectPacket(rng) : mutatedPacket(rng))
  // A valid CONNECT followed by PUBLISHes of hostile JSON to the topics the broker parses.
  const hostile = r < 0.25
  for (let i = 1 + int(rng, 40); i > 0; i--) {
    const k = rng()
    list.push(hostile ? publishPacket(rng, int(rng, 3)) : k < 0.45 ? validPacket(rng) : mutatedPacket(rng))
  }
  return list
}

/**
 * The broker accepts 200 new connections a second from one address, in
 * bursts of 400 (`limits.connectsPerSecondPerAddress`), and the connections
 * here open faster than that. On loopback each comes from one of 250
 * addresses of 127.0.0.0/8 (any of them reaches a loopback listener); the
 * pair and the final check keep 127.0.0.1 to themselves.
 */
function sourceAddress (host: string, index: number): { localAddress?: string } {
  return host.startsWith('127.') ? { localAddress: `127.0.1.${(index % 250) + 1}` } : {}
}

let sent = 0
let opened = 0
let crashed = false

/** One connection: writes its plan (until the budget is spent or the broker closes it), then ends. */
async function runConnection (target: Target, index: number): Promise<void> {
  const rng = prng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0)
  const socket: Socket = tcpConnect({ port: target.port, host: target.host, ...sourceAddress(target.host, index) })
  socket.setNoDelay(true)
  socket.on('data', () => undefined) // read and drop: a full socket would stall the broker's writes to us
  socket.on('error', () => undefined)
  let closed = false
  // Not events.once: it rejects on 'error', and a reset socket is routine here.
  const closedP = new Promise<void>((resolve) => socket.once('close', () => { closed = true; resolve() }))
  await Promise.race([new Promise((resolve) => socket.once('connect', resolve)), closedP])
  if (closed) return
  opened++
  for (const packet of plan(rng)) {
    if (closed || sent >= packets || crashed) break
    sent++
    if (!socket.write(packet)) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closedP])
    else await new Promise((resolve) => setImmediate(resolve))
  }
  socket.end()
  // A broker waiting for the rest of a declared length closes on our FIN; bounded anyway.
  const timer = setTimeout(() => socket.destroy(), 2_000)
  await closedP
  clearTimeout(timer)
}

const started = Date.now()
const target = await startTarget()
const url = `mqtt://${target.host}:${target.port}`
let exitCode = 0
try {
  if (target.child !== null) void target.child.exited.then(() => { crashed = true })
  const pair = await Pair.start(url)
  const rssBefore = rssMb(target.pid)
  let next = 0
  const worker = async (): Promise<void> => {
    while (sent < packets && !crashed) await runConnection(target, next++)
  }
  await Promise.all(Array.from({ length: concurrency }, () => worker()))
  const missing = await pair.finish(30_000)
  const alive = !crashed && await answers(url)
  const brokerCrashed = crashed || !alive
  const result = {
    seed,
    packets: sent,
    connections: opened,
    brokerCrashed,
    pair: { sent: pair.sent, received: pair.received.size, missing, errors: pair.errors.slice(0, 5) },
    rssMbBefore: rssBefore,
    rssMbAfter: rssMb(target.pid),
    durationMs: Date.now() - started
  }
  await pair.close().catch(() => undefined)
  process.stdout.write(JSON.stringify(result) + '\n')
  if (brokerCrashed || missing > 0 || pair.errors.length > 0) {
    exitCode = 1
    if (target.child !== null && crashed) process.stderr.write(`broker stderr:\n${target.child.stderr().slice(-4000)}\n`)
  }
} catch (err) {
  process.stderr.write(`fuzz run failed: ${(err as Error).stack ?? String(err)}\n`)
  if (target.child !== null) process.stderr.write(`broker stderr:\n${target.child.stderr().slice(-4000)}\n`)
  exitCode = 1
} finally {
  await target.child?.stop()
}
process.exit(exitCode)
