// Busy stretches of a V8 CPU profile: runs of consecutive samples that are not
// `(idle)`, i.e. time the event loop did not get back to polling. One longer
// than a few ms is a stall a client sees (bench/latency-stalls.ts).
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { SourceMaps } from './cpu-profile-top.js'

export interface CpuProfile {
  nodes: Array<{ id: number, callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number }, children?: number[] }>
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export interface Stretch {
  /** Since the profile's start, ms. */
  atMs: number
  ms: number
  samples: number
  /** A long gap means the thread was not running (descheduled), not busy in a frame. */
  maxGapMs: number
  /** Self time by frame within the stretch, largest first (top 6). */
  top: Array<{ name: string, location: string, ms: number }>
  /** The commonest call paths (outermost JS frames) in the stretch. */
  paths: string[]
}

const repoRoot = fileURLToPath(new URL('..', import.meta.url))

function where (url: string, line: number, column: number, maps: SourceMaps): string {
  if (url === '') return ''
  let l = line + 1
  const entry = maps.get(url)?.findEntry(line, column)
  if (entry !== undefined && 'originalLine' in entry) l = entry.originalLine + 1
  if (url.startsWith('file://')) return `${relative(repoRoot, fileURLToPath(url))}:${l}`
  return `${url.replace(/^.*node_modules\//, '')}:${l}`
}

export function busyStretches (profile: CpuProfile, minMs: number, maps: SourceMaps): Stretch[] {
  const samples = profile.samples ?? []
  const deltas = profile.timeDeltas ?? []
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const name = (id: number): string => byId.get(id)?.callFrame.functionName || '(anonymous)'
  const stretches: Stretch[] = []
  let t = 0
  let start = -1
  let startT = 0
  const close = (end: number, endT: number): void => {
    const ms = (endT - startT) / 1000
    if (ms < minMs) return
    const self = new Map<number, number>()
    const paths = new Map<string, number>()
    let maxGap = 0
    for (let i = start; i < end; i++) {
      const id = samples[i] as number
      const d = Math.max(0, deltas[i + 1] ?? 0)
      maxGap = Math.max(maxGap, d)
      self.set(id, (self.get(id) ?? 0) + d)
      // The outermost frames below the root: what the loop was running.
      const chain: string[] = []
      for (let p: number | undefined = id; p !== undefined; p = parent.get(p)) chain.push(name(p))
      const path = chain.reverse().slice(1, 7).join(' > ')
      paths.set(path, (paths.get(path) ?? 0) + d)
    }
    const top = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([id, us]) => {
      const f = byId.get(id)!.callFrame
      return { name: name(id), location: where(f.url, f.lineNumber, f.columnNumber, maps), ms: us / 1000 }
    })
    stretches.push({
      atMs: startT / 1000, ms, samples: end - start, maxGapMs: maxGap / 1000, top,
      paths: [...paths.entries()].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([p, us]) => `${(us / 1000).toFixed(1)} ms ${p}`)
    })
  }
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0
    const idle = name(samples[i] as number) === '(idle)'
    if (!idle && start < 0) {
      start = i
      startT = t
    } else if (idle && start >= 0) {
      close(i, t)
      start = -1
    }
  }
  if (start >= 0) close(samples.length, t)
  return stretches
}
