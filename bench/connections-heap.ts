// What one idle connection costs the broker, object by object: fleetq runs
// in this process (so its heap can be read), N idle connections come from
// one bench/connections-worker.ts process; memoryUsage() after a full GC and,
// with --snapshot, a heap snapshot diff by constructor.
// Usage: node --expose-gc --import tsx bench/connections-heap.ts [--connections 5000] [--snapshot] [--top 40] [--storm] [--smaps]
// (--smaps: RSS per connection by kind of mapping, from /proc/self/smaps: malloc's heap, anonymous mappings, the rest)
// (under --cpu-prof it writes the source maps bench/cpu-profile-top.ts reads)
// (started through `bash -c 'ulimit -n "$(ulimit -Hn)" && exec ...'` for more than ~1,000 connections)
import { fork } from 'node:child_process'
import { connect } from 'node:net'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import v8 from 'node:v8'
import mqttPacket from 'mqtt-packet'
import { createBroker as createBrokerTs } from '../broker/index.js'
import { cpuProfileDir, writeSourceMaps } from './source-maps.js'
import type { ConnectedReply, WorkerCommand, WorkerReply } from './connections-worker.js'

const { values } = parseArgs({
  options: {
    connections: { type: 'string', default: '5000' },
    snapshot: { type: 'boolean', default: false },
    top: { type: 'string', default: '40' },
    persistence: { type: 'string', default: 'level' },
    storm: { type: 'boolean', default: false },
    smaps: { type: 'boolean', default: false },
    'write-snapshots': { type: 'string' },
    // A compiled broker (`tsc -p tsconfig.build.json --outDir <dir>`): <dir>/broker/index.js. Under tsx,
    // esbuild's keepNames turns every named function made per connection into a dictionary-mode object.
    'broker-module': { type: 'string' },
    // Applies per-connection patches the adapter does not call yet (proposed changes to broker/mqtt/adapter.ts), to measure them first.
    'proposed': { type: 'string', default: '' }
  }
})
const n = Number(values.connections)
const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')
const persistence = values.persistence === 'memory' ? 'memory' : 'level'

interface Usage { rss: number, heapUsed: number, heapTotal: number, external: number, arrayBuffers: number }
function usage (): Usage {
  const u = process.memoryUsage()
  return { rss: u.rss, heapUsed: u.heapUsed, heapTotal: u.heapTotal, external: u.external, arrayBuffers: u.arrayBuffers }
}
async function settled (): Promise<Usage> {
  for (let i = 0; i < 3; i++) {
    gc?.()
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return usage()
}

/**
 * Resident kB by kind of mapping: `[heap]` (malloc's brk heap: native
 * objects such as each socket's TCPWrap), anonymous mappings (the V8 heap's
 * pages, malloc's mmap'd arenas and large blocks, thread stacks) and the rest
 * (files, the binary).
 */
async function smaps (): Promise<Record<'heap' | 'anonymous' | 'other', number> & { regions: Map<string, number> }> {
  const out = { heap: 0, anonymous: 0, other: 0, regions: new Map<string, number>() }
  let kind: 'heap' | 'anonymous' | 'other' = 'other'
  let region = ''
  for (const line of (await readFile('/proc/self/smaps', 'utf8')).split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line)
    if (header !== null) {
      const name = header[3] ?? ''
      kind = name === '[heap]' ? 'heap' : name === '' ? 'anonymous' : 'other'
      const sizeKb = (parseInt(header[2] ?? '0', 16) - parseInt(header[1] ?? '0', 16)) / 1024
      region = `${header[1] ?? ''} ${kind} ${sizeKb} kB`
      continue
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line)
    if (rss !== null) {
      out[kind] += Number(rss[1])
      out.regions.set(region, Number(rss[1]))
    }
  }
  return out
}

/** Self size and count by "type:name" of every node of a heap snapshot. */
function byConstructor (): Map<string, { count: number, bytes: number }> {
  const snapshot = JSON.parse(readSnapshot()) as {
    snapshot: { meta: { node_fields: string[], node_types: [string[]] } }
    nodes: number[]
    strings: string[]
  }
  const fields = snapshot.snapshot.meta.node_fields
  const stride = fields.length
  const typeAt = fields.indexOf('type')
  const nameAt = fields.indexOf('name')
  const sizeAt = fields.indexOf('self_size')
  const types = snapshot.snapshot.meta.node_types[0]
  const out = new Map<string, { count: number, bytes: number }>()
  for (let i = 0; i < snapshot.nodes.length; i += stride) {
    const type = types[snapshot.nodes[i + typeAt] ?? 0] ?? '?'
    let name = snapshot.strings[snapshot.nodes[i + nameAt] ?? 0] ?? '?'
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = ''
    if (type === 'code' || type === 'hidden') name = name.slice(0, 40)
    const key = `${type}:${name.slice(0, 60)}`
    const entry = out.get(key) ?? { count: 0, bytes: 0 }
    entry.count++
    entry.bytes += snapshot.nodes[i + sizeAt] ?? 0
    out.set(key, entry)
  }
  return out
}

function readSnapshot (): string {
  const chunks: string[] = []
  const stream = v8.getHeapSnapshot()
  let chunk: unknown
  while ((chunk = stream.read()) !== null) chunks.push(String(chunk))
  return chunks.join('')
}

const createBroker = values['broker-module'] === undefined
  ? createBrokerTs
  : (await import(pathToFileURL(values['broker-module']).href) as { createBroker: typeof createBrokerTs }).createBroker
const proposed = values.proposed.split(',').filter((p) => p !== '')
if (proposed.length > 0) {
  const base = values['broker-module'] === undefined ? '../broker/' : pathToFileURL(join(values['broker-module'], '..', '/')).href
  const { MqttAdapter } = await import(new URL('mqtt/adapter.js', new URL(base, import.meta.url)).href) as typeof import('../broker/mqtt/adapter.js')
  const patches: Array<(client: import('aedes').Client) => void> = []
  for (const name of proposed) {
    if (name === 'lean-client') patches.push((await import(new URL('mqtt/internals/lean-client.js', new URL(base, import.meta.url)).href) as typeof import('../broker/mqtt/internals/lean-client.js')).leanClient)
    else if (name === 'persistence') {
      // Simulates the proposed in-memory indexes of broker/persistence/level-persistence.ts for this bench's
      // clients (clean, no will, no QoS 2): no queue, no will read, no incoming scan for a client that has none.
      const { LevelPersistence } = await import(new URL('persistence/level-persistence.js', new URL(base, import.meta.url)).href) as typeof import('../broker/persistence/level-persistence.js')
      const { Readable } = await import('node:stream')
      const proto = LevelPersistence.prototype as unknown as Record<string, (client: { clean?: boolean }) => unknown>
      const outgoingStream = proto.outgoingStream
      if (outgoingStream === undefined) throw new Error('LevelPersistence.outgoingStream is gone')
      proto.outgoingStream = function (this: unknown, client) { return client.clean === true ? Readable.from([]) : outgoingStream.call(this, client) }
      proto.delWill = async () => undefined
      proto.cleanIncoming = async () => undefined
    } else throw new Error(`--proposed: unknown patch ${name}`)
  }
  const handle = MqttAdapter.prototype.handle
  MqttAdapter.prototype.handle = function (this: InstanceType<typeof MqttAdapter>, socket) {
    handle.call(this, socket)
    const client = (socket as unknown as { client: import('aedes').Client }).client
    for (const patch of patches) patch(client)
  }
}
const dataDir = await mkdtemp(join(tmpdir(), 'fleetq-heap-'))
const limits = { publishesPerSecondPerClient: 0, connectsPerSecondPerAddress: 0, maxConnectionsPerAddress: 0, maxConnections: 0 }
const broker = await createBroker({ port: 0, host: '127.0.0.1', dataDir, persistence, logLevel: 'silent', limits })
const worker = fork(fileURLToPath(new URL('./connections-worker.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'] })
const replies: WorkerReply[] = []
let waiting: ((r: WorkerReply) => void) | null = null
worker.on('message', (r: WorkerReply) => { if (waiting !== null) { const w = waiting; waiting = null; w(r) } else replies.push(r) })
const next = (): Promise<WorkerReply> => replies.length > 0 ? Promise.resolve(replies.shift() as WorkerReply) : new Promise((resolve) => { waiting = resolve })
const request = async (command: WorkerCommand): Promise<WorkerReply> => { worker.send(command); return next() }
await next() // ready

/**
 * One connection before the baseline: what the broker makes once, at its
 * first connection, is not a cost per connection. mqtt-packet builds its
 * table of 65,536 two-byte Buffers (about 7 MB of heap) at the first packet
 * it writes, the CONNACK; counted in the delta it made 2,000 connections
 * look 3.7 KB each heavier.
 */
async function warmUp (port: number): Promise<void> {
  const socket = connect(port, '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.once('data', () => { socket.end(); resolve() })
    socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: 'heap-warm-up', keepalive: 60 }))
  })
  await new Promise((resolve) => socket.once('close', resolve))
}
await warmUp(broker.port)

const before = await settled()
const spacesBefore = new Map(v8.getHeapSpaceStatistics().map((space) => [space.space_name, space.space_size]))
const smapsBefore = values.smaps ? await smaps() : null
const snapshotDir = values['write-snapshots']
if (snapshotDir !== undefined) v8.writeHeapSnapshot(join(snapshotDir, 'before.heapsnapshot'))
const snapBefore = values.snapshot ? byConstructor() : null
const addresses = Array.from({ length: Math.ceil(n / 1000) }, (_, i) => `127.0.${1 + Math.floor(i / 254)}.${1 + (i % 254)}`)
const t0 = performance.now()
const cpu0 = process.cpuUsage()
const connected = await request({ type: 'connect', host: '127.0.0.1', port: broker.port, addresses, idPrefix: 'heap', first: 0, count: n, concurrency: 200, keepalive: 60, connackTimeoutMs: 20_000 }) as ConnectedReply
const seconds = (performance.now() - t0) / 1000
const cpu = process.cpuUsage(cpu0)
// As bench/connections.ts reads it: 3 s after the last CONNACK, no forced GC.
await new Promise((resolve) => setTimeout(resolve, 3_000))
const raw = usage()
const after = await settled()
const smapsAfter = values.smaps ? await smaps() : null
const per = (k: keyof Usage, a: Usage = after): string => ((a[k] - before[k]) / connected.ok).toFixed(0).padStart(7)
process.stdout.write(`${connected.ok} connected (${connected.failed} failed) in ${seconds.toFixed(2)} s: ${(connected.ok / seconds).toFixed(0)}/s, broker CPU ${((cpu.user + cpu.system) / connected.ok).toFixed(0)} µs per connect\n`)
for (const [label, u] of [['3 s after, no GC', raw], ['after full GC', after]] as const) {
  process.stdout.write(`bytes per connection (${label}): rss ${per('rss', u)}  heapTotal ${per('heapTotal', u)}  heapUsed ${per('heapUsed', u)}  external ${per('external', u)}\n`)
}
process.stdout.write(`rss before ${(before.rss / 1048576).toFixed(1)} MB, heapTotal ${(before.heapTotal / 1048576).toFixed(1)} MB\n`)
if (smapsBefore !== null && smapsAfter !== null) {
  const kinds = ['heap', 'anonymous', 'other'] as const
  process.stdout.write(`rss per connection by mapping (after full GC): ${kinds.map((k) => `${k} ${((smapsAfter[k] - smapsBefore[k]) * 1024 / connected.ok).toFixed(0)}`).join('  ')}\n`)
  const grown = [...smapsAfter.regions].map(([r, kb]) => [r, kb - (smapsBefore.regions.get(r) ?? 0)] as const).filter(([, kb]) => Math.abs(kb) >= 512).sort((a, b) => b[1] - a[1])
  for (const [r, kb] of grown.slice(0, 15)) process.stdout.write(`  ${r}: ${kb > 0 ? '+' : ''}${kb} kB\n`)
}
for (const space of v8.getHeapSpaceStatistics()) {
  process.stdout.write(`  ${space.space_name.padEnd(26)} size ${((spacesBefore.get(space.space_name) ?? 0) / 1048576).toFixed(1).padStart(6)} → ${(space.space_size / 1048576).toFixed(1).padStart(6)} MB, used ${(space.space_used_size / 1048576).toFixed(1).padStart(6)} MB\n`)
}
if (snapshotDir !== undefined) v8.writeHeapSnapshot(join(snapshotDir, 'after.heapsnapshot'))
if (snapBefore !== null) {
  const snapAfter = byConstructor()
  const rows: Array<[string, number, number]> = []
  for (const [key, a] of snapAfter) {
    const b = snapBefore.get(key) ?? { count: 0, bytes: 0 }
    rows.push([key, (a.count - b.count) / connected.ok, (a.bytes - b.bytes) / connected.ok])
  }
  rows.sort((x, y) => y[2] - x[2])
  let total = 0
  for (const r of rows) total += r[2]
  process.stdout.write(`heap snapshot delta per connection: ${total.toFixed(0)} bytes\n`)
  for (const [key, count, bytes] of rows.slice(0, Number(values.top))) {
    process.stdout.write(`${bytes.toFixed(1).padStart(9)} B ${count.toFixed(2).padStart(6)}×  ${key}\n`)
  }
}
if (values.storm) {
  const s0 = performance.now()
  const c0 = process.cpuUsage()
  const storm = await request({ type: 'storm', concurrency: 200, connackTimeoutMs: 20_000 }) as ConnectedReply
  const stormSeconds = (performance.now() - s0) / 1000
  const c1 = process.cpuUsage(c0)
  await new Promise((resolve) => setTimeout(resolve, 2_000))
  process.stdout.write(`storm: ${storm.ok} reconnected (${storm.failed} failed) in ${stormSeconds.toFixed(2)} s: ${(storm.ok / stormSeconds).toFixed(0)}/s, broker CPU ${((c1.user + c1.system) / storm.ok).toFixed(0)} µs per reconnect; rss after ${(process.memoryUsage().rss / 1048576).toFixed(1)} MB\n`)
}
await request({ type: 'close' }).catch(() => undefined)
worker.kill()
await broker.close()
await rm(dataDir, { recursive: true, force: true })
const profileDir = cpuProfileDir()
if (profileDir !== null) await writeSourceMaps(profileDir)
