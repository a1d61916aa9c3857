// What stalls fleetq's event loop at a steady rate: bench:latency's load (mqload,
// one publisher → one subscriber) against bench/latency-stalls-server.ts, which
// records each late turn of a 1 ms timer and each garbage collection with its
// time. Prints every stall with the collections that overlap it and, with
// --cpu-prof, the busy stretches of the CPU profile longer than --slow-ms and
// the frames in them.
// Usage: npx tsx bench/latency-stalls.ts [--seconds 20] [--rate 1000] [--qos 0|1] [--slow-ms 5] [--cpu-prof] [--sys-interval <s>] [--node-args="--trace-gc ..."] [--trace-out <file>]
import { readdir, mkdtemp } from 'node:fs/promises'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { readSourceMaps, type SourceMaps } from './cpu-profile-top.js'
import { ensureMqload, runMqload } from './mqload.js'
import { loadAverage } from './report.js'
import { SOURCE_MAPS_FILE } from './source-maps.js'
import { busyStretches, type CpuProfile } from './latency-stretches.js'
import { startStallTarget } from './latency-target.js'

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    rate: { type: 'string', default: '1000' },
    qos: { type: 'string', default: '1' },
    'slow-ms': { type: 'string', default: '5' },
    'cpu-prof': { type: 'boolean', default: false },
    'sys-interval': { type: 'string' },
    persistence: { type: 'string', default: 'level' },
    'node-args': { type: 'string', default: '' },
    'trace-out': { type: 'string' },
    'heap-sampling': { type: 'boolean', default: false }
  }
})
const seconds = Number(values.seconds)
const rate = Number(values.rate)
const qos = values.qos === '0' ? 0 : 1
const slowMs = Number(values['slow-ms'])

await ensureMqload()
const profDir = values['cpu-prof'] ? await mkdtemp(join(tmpdir(), 'fleetq-stalls-prof-')) : null
const target = await startStallTarget({
  persistence: values.persistence === 'memory' ? 'memory' : 'level',
  stallMs: slowMs,
  nodeArgs: [
    ...values['node-args'].split(/\s+/).filter((a) => a !== ''),
    ...(profDir === null ? [] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`, '--cpu-prof-interval=200'])
  ],
  ...(values['sys-interval'] === undefined ? {} : { sysIntervalSeconds: Number(values['sys-interval']) }),
  heapSampling: values['heap-sampling']
})
const traced = target.traced

try {
  const port = Number(new URL(target.url).port)
  const runId = Date.now().toString(36)
  await runMqload({ port, pubs: 1, subs: 1, qos: 1, msgs: 5_000, topic: `fleetq-stalls/${runId}/warm` })
  const loadStart = loadAverage()
  await target.reset()
  traced.push('--- reset: measured run starts ---')
  const result = await runMqload({ port, pubs: 1, subs: 1, qos, msgs: Math.round(seconds * rate), rate, slowMs, timeout: seconds + 30, topic: `fleetq-stalls/${runId}/run` })
  const report = await target.report()
  process.stdout.write(`QoS ${qos}, ${rate} msg/s for ${seconds} s; load average ${loadStart.toFixed(2)} → ${loadAverage().toFixed(2)}\n`)
  process.stdout.write(`client: p50 ${result.p50_ms.toFixed(2)} ms, p99 ${result.p99_ms.toFixed(2)} ms, p99.9 ${result.p999_ms.toFixed(2)} ms, max ${result.max_ms.toFixed(1)} ms, ${result.slow} slower than ${slowMs} ms\n`)
  process.stdout.write(`broker: ${report.turns} timer turns, ${report.stalls.length} late by more than ${slowMs} ms; heap ${(report.heapUsed / 1048576).toFixed(1)}/${(report.heapTotal / 1048576).toFixed(1)} MB, RSS ${(report.rss / 1048576).toFixed(1)} MB\n`)
  const total = report.writes.at(-1)?.count ?? 0
  process.stdout.write(`LevelDB batches: ${total}; ` + report.writes.filter((w) => w.le !== null && w.le >= 0.0005 && w.le <= 0.025).map((w) => `> ${(w.le! * 1000).toString()} ms: ${total - w.count}`).join(', ') + '\n')
  const byKind = new Map<string, { n: number, ms: number, max: number, over: number }>()
  for (const g of report.gcs) {
    const k = byKind.get(g.kind) ?? { n: 0, ms: 0, max: 0, over: 0 }
    k.n++
    k.ms += g.ms
    k.max = Math.max(k.max, g.ms)
    if (g.ms > slowMs) k.over++
    byKind.set(g.kind, k)
  }
  for (const [kind, k] of byKind) process.stdout.write(`gc ${kind}: ${k.n} (${(k.n / seconds).toFixed(1)}/s), ${k.ms.toFixed(0)} ms in all, max ${k.max.toFixed(1)} ms, ${k.over} over ${slowMs} ms\n`)
  const preempted = report.stalls.filter((s) => s.waitMs > s.runMs).length
  process.stdout.write(`${preempted} of ${report.stalls.length} stalls spent more time waiting for a CPU than running (the machine, not fleetq)\n`)
  let withGc = 0
  for (const s of report.stalls) {
    const overlapping = report.gcs.filter((g) => g.atMs < s.atMs + s.lateMs && g.atMs + g.ms > s.atMs)
    if (overlapping.length > 0) withGc++
    const gcText = overlapping.map((g) => `${g.kind} ${g.ms.toFixed(1)} ms`).join(', ')
    process.stdout.write(`  stall at ${(s.atMs / 1000).toFixed(3)} s: ${s.lateMs.toFixed(1)} ms (on CPU ${s.runMs.toFixed(1)}, waiting for a CPU ${s.waitMs.toFixed(1)})${gcText === '' ? '' : ` (gc: ${gcText})`}\n`)
  }
  for (const a of report.allocations) process.stdout.write(`alloc ${a.mb.toFixed(2).padStart(7)} MB  ${a.stack}\n`)
  if (values['trace-out'] !== undefined) writeFileSync(values['trace-out'], traced.join('\n') + '\n')
  if (traced.length > 0) {
    // --trace-gc lines end with the reason for the collection.
    const reasons = new Map<string, number>()
    for (const t of traced) {
      // "[pid:0x…]  1234 ms: Mark-Compact 28.3 (60.8) -> 27.9 (59.8) MB, … (average mu = …, current mu = …) finalize incremental marking via task; GC in old space requested"
      const m = /\d+ ms: ([A-Za-z-]+(?: \(reduce\))?) .*?(?:current mu = [0-9.]+\) )?([a-z][^;]*(?:; .*)?)$/.exec(t)
      const key = m === null ? t.slice(0, 80) : `${m[1]}: ${m[2]}`
      reasons.set(key, (reasons.get(key) ?? 0) + 1)
    }
    process.stdout.write(`traced lines by kind and reason:\n${[...reasons].sort((a, b) => b[1] - a[1]).map(([r, n]) => `  ${n} × ${r}`).join('\n')}\n`)
  }
  process.stdout.write(`${withGc} of ${report.stalls.length} stalls overlap a garbage collection\n`)
} finally {
  await target.close()
}

if (profDir !== null) {
  const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'))
  const maps: SourceMaps = existsSync(join(profDir, SOURCE_MAPS_FILE)) ? readSourceMaps(join(profDir, SOURCE_MAPS_FILE)) : new Map()
  for (const file of files) {
    const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8')) as CpuProfile
    const stretches = busyStretches(profile, slowMs, maps)
    if (stretches.length === 0) continue
    process.stdout.write(`\n${join(profDir, file)}: ${stretches.length} busy stretches over ${slowMs} ms\n`)
    for (const s of stretches) {
      process.stdout.write(`  at ${(s.atMs / 1000).toFixed(3)} s: ${s.ms.toFixed(1)} ms, ${s.samples} samples, longest gap between samples ${s.maxGapMs.toFixed(1)} ms\n`)
      for (const f of s.top) process.stdout.write(`      ${f.ms.toFixed(1).padStart(6)} ms  ${f.name}  ${f.location}\n`)
      for (const path of s.paths) process.stdout.write(`      via ${path}\n`)
    }
  }
}
