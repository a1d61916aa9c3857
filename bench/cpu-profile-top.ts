// The frames with the most self time in a V8 CPU profile (`node --cpu-prof`).
// Usage: npx tsx bench/cpu-profile-top.ts <file.cpuprofile> [--top 15] [--markdown]
// TypeScript lines come from <profile dir>/sourcemaps.json when the profiled
// process wrote one (bench/fleetq-server.ts does). Self time is time spent in a function's own code, not in what it calls:
// the place to look first when a hot path costs too much CPU per message.
import { existsSync, readFileSync } from 'node:fs'
import { SourceMap, type SourceMapPayload } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { SOURCE_MAPS_FILE } from './source-maps.js'

/** The parts of the .cpuprofile format (Chrome DevTools Profiler.Profile) read here. */
interface CpuProfile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number } }>
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export interface FrameTime {
  /** Function name, or `(anonymous)` / V8's `(garbage collector)`, `(program)`, `(idle)`. */
  name: string
  /** file:line relative to the repository, node:internal path, or '' for V8 pseudo-frames. */
  location: string
  selfMs: number
  /** Share of the profile's sampled time, idle included, in percent. */
  percent: number
}

const repoRoot = fileURLToPath(new URL('..', import.meta.url))

/** Source maps by module URL, as bench/source-maps.ts writes them. */
export type SourceMaps = ReadonlyMap<string, SourceMap>

export function readSourceMaps (file: string): SourceMaps {
  const payloads = JSON.parse(readFileSync(file, 'utf8')) as Record<string, SourceMapPayload>
  return new Map(Object.entries(payloads).map(([url, payload]) => [url, new SourceMap(payload)]))
}

function locate (url: string, lineNumber: number, columnNumber: number, maps: SourceMaps): string {
  if (url === '') return ''
  // Positions are 0-based in both the profile and source map formats.
  let line = lineNumber + 1
  const entry = maps.get(url)?.findEntry(lineNumber, columnNumber)
  if (entry !== undefined && 'originalLine' in entry) line = entry.originalLine + 1
  if (url.startsWith('file://')) return `${relative(repoRoot, fileURLToPath(url))}:${line}`
  return `${url}:${line}`
}

/** Self time per frame (same function at the same place), largest first. */
export function topFrames (profile: CpuProfile, maps: SourceMaps = new Map()): FrameTime[] {
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  const selfUs = new Map<number, number>()
  // timeDeltas[i] is the time before sample i; charge it to sample i's node,
  // as Chrome DevTools does.
  for (let i = 0; i < samples.length; i++) {
    const id = samples[i] as number
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, deltas[i] ?? 0))
  }
  let totalUs = 0
  const byFrame = new Map<string, FrameTime>()
  for (const node of profile.nodes) {
    const us = selfUs.get(node.id) ?? 0
    totalUs += us
    if (us === 0) continue
    const { functionName, url, lineNumber, columnNumber } = node.callFrame
    const name = functionName === '' ? '(anonymous)' : functionName
    const location = locate(url, lineNumber, columnNumber, maps)
    const key = `${name}\u0000${location}`
    const frame = byFrame.get(key) ?? { name, location, selfMs: 0, percent: 0 }
    frame.selfMs += us / 1000
    byFrame.set(key, frame)
  }
  const frames = [...byFrame.values()]
  for (const f of frames) f.percent = totalUs === 0 ? 0 : (f.selfMs * 1000 * 100) / totalUs
  return frames.sort((a, b) => b.selfMs - a.selfMs)
}

/** Busy time: everything but `(idle)`, in ms. */
export function busyMs (frames: readonly FrameTime[]): number {
  return frames.reduce((sum, f) => (f.name === '(idle)' ? sum : sum + f.selfMs), 0)
}

export function formatFrames (frames: readonly FrameTime[], top: number, markdown: boolean): string {
  const busy = busyMs(frames)
  const shown = frames.slice(0, top)
  const rows = shown.map((f, i) => [String(i + 1), f.selfMs.toFixed(1), busy === 0 || f.name === '(idle)' ? '-' : ((f.selfMs * 100) / busy).toFixed(1), f.name, f.location])
  const header = ['#', 'self ms', '% busy', 'function', 'file:line']
  if (markdown) {
    const esc = (s: string): string => s.replaceAll('|', '\\|')
    return [`| ${header.join(' | ')} |`, '| --: | --: | --: | --- | --- |', ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)].join('\n')
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)))
  const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join('  ')
  return [line(header), ...rows.map(line)].join('\n')
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '15' }, markdown: { type: 'boolean', default: false } }
  })
  const file = positionals[0]
  const top = Number(values.top)
  if (file === undefined || !Number.isSafeInteger(top) || top < 1) {
    process.stderr.write('usage: tsx bench/cpu-profile-top.ts <file.cpuprofile> [--top 15] [--markdown]\n')
    process.exit(2)
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile
  const mapsFile = join(dirname(file), SOURCE_MAPS_FILE)
  const frames = topFrames(profile, existsSync(mapsFile) ? readSourceMaps(mapsFile) : new Map())
  const wallMs = (profile.endTime - profile.startTime) / 1000
  process.stdout.write(`${file}: ${wallMs.toFixed(0)} ms profiled, ${busyMs(frames).toFixed(0)} ms busy (not idle)\n`)
  process.stdout.write(formatFrames(frames, top, values.markdown) + '\n')
}
