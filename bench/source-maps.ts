import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { findSourceMap } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/**
 * tsx compiles each TypeScript file to one line of JavaScript, so a CPU
 * profile of the broker run under tsx places every function at line 1 of its
 * .ts file. Node keeps the source map of each loaded module
 * (`module.findSourceMap`); a profiled process writes them next to its
 * profile, and bench/cpu-profile-top.ts maps the positions back.
 */
export const SOURCE_MAPS_FILE = 'sourcemaps.json'

const repoRoot = fileURLToPath(new URL('..', import.meta.url))
/** Folders whose modules a broker profile can name. */
const folders = ['broker', 'protocol', 'bench']

/** The `--cpu-prof-dir` of this process, its working directory under a bare `--cpu-prof`, or null when it is not profiled. */
export function cpuProfileDir (): string | null {
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)]
  if (!flags.some((f) => f === '--cpu-prof')) return null
  const at = flags.findIndex((f) => f === '--cpu-prof-dir' || f.startsWith('--cpu-prof-dir='))
  if (at < 0) return process.cwd()
  const flag = flags[at] ?? ''
  return flag.includes('=') ? flag.slice(flag.indexOf('=') + 1) : (flags[at + 1] ?? process.cwd())
}

/** Writes { fileUrl: sourceMapPayload } for every loaded .ts module of the repository. */
export async function writeSourceMaps (dir: string): Promise<void> {
  const maps: Record<string, unknown> = {}
  for (const folder of folders) {
    const entries = await readdir(join(repoRoot, folder), { recursive: true })
    for (const entry of entries) {
      if (!entry.endsWith('.ts')) continue
      const url = pathToFileURL(join(repoRoot, folder, entry)).href
      const map = findSourceMap(url)
      if (map !== undefined) maps[url] = map.payload
    }
  }
  // Node creates the profile directory only when it writes the profile, at exit.
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, SOURCE_MAPS_FILE), JSON.stringify(maps))
}
