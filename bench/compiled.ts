import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

/**
 * How the benchmarks run fleetq's processes (the broker, the task producer
 * and workers): compiled by tsc and run on plain node, as `npm start` runs
 * `dist/`, not under tsx. tsx costs each process about 26 MB of RSS, and
 * esbuild's keepNames turns every named function made per connection into a
 * dictionary-mode object (docs/benchmarks.md, "What runs"). BullMQ's side
 * runs compiled JavaScript from node_modules either way.
 *
 * `FLEETQ_BENCH_RUNTIME=tsx` runs the TypeScript under tsx instead, and a
 * CPU-profiled process always does: bench/cpu-profile-top.ts maps tsx's
 * source maps back to TypeScript lines (bench/source-maps.ts).
 */
export type BenchRuntime = 'compiled' | 'tsx'

const repoRoot = fileURLToPath(new URL('..', import.meta.url))
const buildDir = fileURLToPath(new URL('../.bench-build/', import.meta.url))
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')

export function benchRuntime (nodeArgs: readonly string[] = []): BenchRuntime {
  if (nodeArgs.some((arg) => arg.startsWith('--cpu-prof'))) return 'tsx'
  const chosen = process.env.FLEETQ_BENCH_RUNTIME ?? 'compiled'
  if (chosen !== 'compiled' && chosen !== 'tsx') throw new Error(`FLEETQ_BENCH_RUNTIME must be compiled or tsx, got ${chosen}`)
  return chosen
}

let build: Promise<void> | null = null

/**
 * Compiles protocol/, broker/, client/ and bench/ into .bench-build/ (same
 * layout as the repository, so `schemas/` and `dashboard/` resolve as from
 * dist/), once per benchmark process. tsc emits even where it reports a type
 * error, and the benchmark goes on: a type error is `npm run typecheck`'s to report.
 */
export function compileOnce (): Promise<void> {
  build ??= promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.bench.json'], { cwd: repoRoot, maxBuffer: 16 * 1024 * 1024 })
    .then(() => undefined, (err: { stdout?: string, code?: unknown }) => {
      // Exit code 2: emitted with type errors. Anything else did not build.
      if (err.code !== 2) throw new Error(`tsc -p tsconfig.bench.json failed:\n${err.stdout ?? String(err)}`, { cause: err })
    })
  return build
}

/** The node arguments that run `script` (a bench/ TypeScript file's URL) in `runtime`: `[...execArgv, file]`. */
export async function nodeCommand (script: URL, runtime: BenchRuntime): Promise<{ execArgv: string[], file: string }> {
  const source = fileURLToPath(script)
  if (runtime === 'tsx') return { execArgv: ['--import', 'tsx'], file: source }
  await compileOnce()
  return { execArgv: [], file: buildDir + relative(repoRoot, source).replace(/\.ts$/, '.js') }
}
