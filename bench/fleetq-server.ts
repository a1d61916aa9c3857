// fleetq in its own process for benchmarks: its RSS is then its own, and it
// does not share an event loop with the load generator.
// Usage: node --import tsx bench/fleetq-server.ts [--data-dir <dir>] [--persistence level|memory] [--http] [--group-max-length <n>]
// Under `node --cpu-prof --cpu-prof-dir <dir>` it also writes <dir>/sourcemaps.json
// at exit, so bench/cpu-profile-top.ts can name TypeScript lines (see there).
// Prints {"port":N,"pid":P} on stdout once it accepts connections (with
// --http, also "httpPort": the /metrics listener on a free port); stops on
// SIGTERM, SIGINT or when stdin closes (the parent died).
import { appendFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { getHeapSpaceStatistics } from 'node:v8'
import { createBroker } from '../broker/index.js'
import { stopOnSignals } from './server-lifecycle.js'

const { values } = parseArgs({
  options: {
    'data-dir': { type: 'string' },
    persistence: { type: 'string', default: 'level' },
    http: { type: 'boolean', default: false },
    // Above the default 100,000 (docs/shared-subscriptions.md "Settings") for
    // bench/curves.ts's queue-depth curve, which would otherwise drop the
    // oldest tasks of its 1,000,000 point.
    'group-max-length': { type: 'string' }
  }
})
const persistence = values.persistence
if (persistence !== 'level' && persistence !== 'memory') {
  process.stderr.write(`--persistence must be level or memory, got ${String(persistence)}\n`)
  process.exit(2)
}
const groupMaxLength = values['group-max-length'] === undefined ? undefined : Number(values['group-max-length'])
if (groupMaxLength !== undefined && (!Number.isSafeInteger(groupMaxLength) || groupMaxLength < 1)) {
  process.stderr.write(`--group-max-length must be an integer >= 1, got ${String(values['group-max-length'])}\n`)
  process.exit(2)
}
// Without --data-dir the temporary directory is ours to remove.
const ownDir = values['data-dir'] === undefined
const dataDir = values['data-dir'] ?? await mkdtemp(join(tmpdir(), 'fleetq-bench-'))

// The load generators are few clients from one address at full speed: the
// per-client and per-address limits meant for devices are lifted.
// maxConnections too: bench/connections.ts opens as many as the open-file limit allows.
const limits = { publishesPerSecondPerClient: 0, connectsPerSecondPerAddress: 0, maxConnectionsPerAddress: 0, maxConnections: 0, maxPacketBytes: 16 * 1024 * 1024 }
const broker = await createBroker({ port: 0, host: '127.0.0.1', dataDir, persistence, logLevel: 'silent', limits, ...(groupMaxLength === undefined ? {} : { shared: { defaults: { maxLength: groupMaxLength } } }), ...(values.http ? { http: { port: 0 } } : {}) })
// FLEETQ_BENCH_MEMORY_LOG=<file>: a JSON line every 500 ms of process.memoryUsage()
// and the V8 heap spaces' committed sizes (MiB), to see where the RSS goes.
const memoryLog = process.env['FLEETQ_BENCH_MEMORY_LOG']
if (memoryLog !== undefined && memoryLog !== '') {
  const mib = (bytes: number): number => Math.round(bytes / 104857.6) / 10
  setInterval(() => {
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, mib(s.physical_space_size)]))
    const usage = Object.fromEntries(Object.entries(process.memoryUsage()).map(([k, v]) => [k, mib(v)]))
    appendFileSync(memoryLog, JSON.stringify({ t: Date.now(), ...usage, spaces }) + '\n')
  }, 500).unref()
}
const httpPort = broker.endpoints.find((e) => e.kind === 'http')?.port
process.stdout.write(JSON.stringify({ port: broker.port, pid: process.pid, ...(httpPort === undefined ? {} : { httpPort }) }) + '\n')

stopOnSignals(broker, { removeDir: ownDir ? dataDir : null })
