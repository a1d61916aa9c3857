// fleetq in its own process for bench/latency-stalls.ts: bench/fleetq-server.ts's
// broker, plus a record of each event-loop stall and each garbage collection
// with its time, so a stall can be matched with what ran during it.
// Usage: node [--cpu-prof --cpu-prof-dir <dir>] --import tsx bench/latency-stalls-server.ts [--persistence level|memory] [--sys-interval <s>] [--stall-ms 5]
// Prints {"port":N,"pid":P} once listening; answers "reset" and "report" lines
// on stdin (report: one JSON line); stops on SIGTERM or when stdin closes.
import { openSync, readSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PerformanceObserver, constants, performance, type PerformanceEntry } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { Session } from 'node:inspector/promises'
import { parseArgs } from 'node:util'
import { createBroker } from '../broker/index.js'
import { persistenceWriteSeconds, type HistogramSnapshot } from '../broker/observability/fixed-histogram.js'
import { stopOnSignals } from './server-lifecycle.js'

const { values } = parseArgs({
  options: {
    persistence: { type: 'string', default: 'level' },
    'sys-interval': { type: 'string' },
    'stall-ms': { type: 'string', default: '5' },
    'heap-sampling': { type: 'boolean', default: false }
  }
})
const persistence = values.persistence
if (persistence !== 'level' && persistence !== 'memory') {
  process.stderr.write(`--persistence must be level or memory, got ${String(persistence)}\n`)
  process.exit(2)
}
const stallMs = Number(values['stall-ms'])
const dataDir = await mkdtemp(join(tmpdir(), 'fleetq-stalls-'))
// As bench/fleetq-server.ts: the device limits are lifted for the generator.
const limits = { publishesPerSecondPerClient: 0, connectsPerSecondPerAddress: 0, maxConnectionsPerAddress: 0, maxConnections: 0, maxPacketBytes: 16 * 1024 * 1024 }
const broker = await createBroker({
  port: 0, host: '127.0.0.1', dataDir, persistence, logLevel: 'silent', limits,
  ...(values['sys-interval'] === undefined ? {} : { sysIntervalSeconds: Number(values['sys-interval']) })
})

/**
 * A turn of the 1 ms sampler that came late: when it was due (ms,
 * performance.now()), by how much, and how the main thread spent the time
 * since the previous turn (Linux schedstat): on a CPU (`runMs`, our work) or
 * runnable but waiting for one (`waitMs`: the machine was busy, not fleetq).
 */
interface Stall { atMs: number, lateMs: number, runMs: number, waitMs: number }
interface Gc { atMs: number, ms: number, kind: string }
const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak-callbacks'
}

let stalls: Stall[] = []
let gcs: Gc[] = []
let turns = 0
let writesAtReset: HistogramSnapshot = persistenceWriteSeconds.snapshot()
// /proc/thread-self/schedstat: "<ns on a CPU> <ns waiting on a run queue> <timeslices>".
// Read into one buffer and parsed by hand: the sampler runs 1,000 times a
// second and must not add garbage of its own to what it measures.
const schedFd = (() => { try { return openSync('/proc/thread-self/schedstat', 'r') } catch { return null } })()
const schedBuf = Buffer.alloc(128)
const sched: [number, number] = [0, 0]
const schedstat = (): [number, number] => {
  if (schedFd === null) return sched
  const n = readSync(schedFd, schedBuf, 0, schedBuf.length, 0)
  let field = 0
  let value = 0
  for (let i = 0; i < n && field < 2; i++) {
    const c = schedBuf[i]!
    if (c >= 48 && c <= 57) {
      value = value * 10 + (c - 48)
    } else {
      sched[field++] = value / 1e6
      value = 0
    }
  }
  return sched
}
let last = performance.now()
let [lastRun, lastWait] = schedstat()
// The interval's own 1 ms is taken off: a turn on time is 0 ms late.
const sampler = setInterval(() => {
  const now = performance.now()
  schedstat()
  const run = sched[0]
  const wait = sched[1]
  const late = now - last - 1
  if (late > stallMs) stalls.push({ atMs: now - late, lateMs: late, runMs: run - lastRun, waitMs: wait - lastWait })
  last = now
  lastRun = run
  lastWait = wait
  turns++
}, 1)
const observer = new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind
    gcs.push({ atMs: e.startTime, ms: e.duration, kind: kind === undefined ? 'gc' : GC_KINDS[kind] ?? String(kind) })
  }
})
observer.observe({ entryTypes: ['gc'] })

// --heap-sampling: V8's sampling heap profiler from the reset on; the report
// then names the call paths that allocated the most (self bytes, sampled).
const heapSession = values['heap-sampling'] ? new Session() : null
heapSession?.connect()
interface SamplingNode { callFrame: { functionName: string, url: string, lineNumber: number }, selfSize: number, children: SamplingNode[] }
async function heapTop (): Promise<Array<{ mb: number, stack: string }>> {
  if (heapSession === null) return []
  const { profile } = await heapSession.post('HeapProfiler.getSamplingProfile') as { profile: { head: SamplingNode } }
  const out: Array<{ mb: number, stack: string }> = []
  const walk = (n: SamplingNode, path: string[]): void => {
    const here = [...path, `${n.callFrame.functionName || '(anon)'}@${n.callFrame.url.replace(/^.*\/(node_modules\/)?/, '')}:${n.callFrame.lineNumber + 1}`]
    if (n.selfSize > 0) out.push({ mb: n.selfSize / 1048576, stack: here.slice(-7).join(' < ') })
    for (const c of n.children) walk(c, here)
  }
  walk(profile.head, [])
  return out.sort((a, b) => b.mb - a.mb).slice(0, 25)
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = line.trim()
  if (command === 'reset') {
    if (heapSession !== null) void heapSession.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
    stalls = []
    gcs = []
    turns = 0
    writesAtReset = persistenceWriteSeconds.snapshot()
    process.stdout.write('{"reset":true}\n')
  } else if (command === 'report') {
    void heapTop().then((top) => { report(top) })
  }
})

function report (allocations: Array<{ mb: number, stack: string }>): void {
  {
    const { heapUsed, heapTotal, rss } = process.memoryUsage()
    // LevelDB batches since the reset, by bucket (seconds): a slow batch delays a QoS 1 delivery without stalling the loop.
    const now = persistenceWriteSeconds.snapshot()
    const writes = now.bounds.map((le, i) => ({ le, count: now.cumulative[i]! - writesAtReset.cumulative[i]! }))
    writes.push({ le: Infinity, count: now.count - writesAtReset.count })
    process.stdout.write(JSON.stringify({ turns, stalls, gcs, heapUsed, heapTotal, rss, writes, allocations }) + '\n')
  }
}

process.stdout.write(JSON.stringify({ port: broker.port, pid: process.pid }) + '\n')

stopOnSignals(broker, {
  removeDir: dataDir,
  beforeClose: () => {
    clearInterval(sampler)
    observer.disconnect()
  }
})
