// CPU profile of fleetq under the C load generator: one fleetq per scenario,
// run under `node --cpu-prof`, then the frames with the most self time.
// Usage: npm run bench:profile -- [--scenarios qos1-fanin,qos1-shared] [--messages 80000] [--top 15] [--dir <dir>]
import { readdir, mkdtemp } from 'node:fs/promises'
import { readFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { startFleetq } from './brokers.js'
import { busyMs, formatFrames, readSourceMaps, topFrames } from './cpu-profile-top.js'
import { ensureMqload } from './mqload.js'
import { runMqloadScenario } from './mqload-runner.js'
import { benchDefaults } from './options.js'
import { loadAverage } from './report.js'
import { findScenario } from './scenarios.js'
import { SOURCE_MAPS_FILE } from './source-maps.js'

const { values } = parseArgs({
  options: {
    scenarios: { type: 'string', default: 'qos1-fanin,qos1-shared' },
    messages: { type: 'string', default: '80000' },
    top: { type: 'string', default: '15' },
    dir: { type: 'string' },
    persistence: { type: 'string', default: 'level' }
  }
})
const messages = Number(values.messages)
const top = Number(values.top)
const persistence = values.persistence
if (!Number.isSafeInteger(messages) || messages < 1 || !Number.isSafeInteger(top) || top < 1 || (persistence !== 'level' && persistence !== 'memory')) {
  process.stderr.write('usage: npm run bench:profile -- [--scenarios a,b] [--messages n] [--top n] [--dir <dir>] [--persistence level|memory]\n')
  process.exit(2)
}
const scenarios = values.scenarios.split(',').map((name) => findScenario(name.trim()))
const root = values.dir ?? await mkdtemp(join(tmpdir(), 'fleetq-profile-'))
await ensureMqload()

const settings = { ...benchDefaults, messages }
for (const scenario of scenarios) {
  const dir = join(root, scenario.name)
  const target = await startFleetq(persistence, false, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] })
  const loadStart = loadAverage()
  let line: string
  try {
    // Unreported warm-up: the profile then shows the steady state more than start-up.
    await runMqloadScenario(target, scenario, { ...settings, messages: 10_000 }, 'warm', 0)
    const r = await runMqloadScenario(target, scenario, settings, `p${Date.now().toString(36)}`, 1)
    line = `${Math.round(r.msgPerSec).toLocaleString('en-US')} msg/s, p50 ${r.p50Ms?.toFixed(1) ?? '-'} ms, p99 ${r.p99Ms?.toFixed(1) ?? '-'} ms, ` +
      `${r.delivered}/${r.expected} delivered, CPU ${r.cpuSeconds === null ? '-' : Math.round(r.cpuSeconds * 1e6 / Math.max(1, r.delivered))} µs/msg`
  } finally {
    // SIGTERM: fleetq-server closes the broker and exits, and Node writes the profile.
    await target.close()
  }
  // One profile per thread; the main thread is the busiest.
  const files = (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f))
  const maps = existsSync(join(dir, SOURCE_MAPS_FILE)) ? readSourceMaps(join(dir, SOURCE_MAPS_FILE)) : new Map()
  const profiles = files.map((file) => ({ file, frames: topFrames(JSON.parse(readFileSync(file, 'utf8')), maps) }))
  const main = profiles.sort((a, b) => busyMs(b.frames) - busyMs(a.frames))[0]
  if (main === undefined) throw new Error(`no .cpuprofile in ${dir}`)
  process.stdout.write(`\n### ${scenario.name}: ${scenario.description}\n\n${line} under the profiler; load average ${loadStart.toFixed(2)} at start, ${loadAverage().toFixed(2)} at end\n` +
    `${main.file} (${busyMs(main.frames).toFixed(0)} ms busy, start-up and warm-up included)\n\n${formatFrames(main.frames, top, true)}\n`)
}
