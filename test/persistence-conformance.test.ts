import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { PRODUCTION_SKIPS } from './conformance/aedes-production-skips.js'

const suite = fileURLToPath(new URL('./conformance/aedes-persistence.suite.ts', import.meta.url))

interface SuiteResult { code: number | null, pass: number, fail: number, skipped: string[], output: string }

// aedes-persistence's abstract suite is written for node:test (t.plan,
// t.assert), so it runs in its own node process and we read its TAP summary.
async function runSuite (store: 'level' | 'memory', config: 'plain' | 'production'): Promise<SuiteResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', suite], {
    env: { ...process.env, FLEETQ_SUITE_STORE: store, FLEETQ_SUITE_CONFIG: config },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  const count = (name: string): number => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(output)?.[1] ?? -1)
  // `ok 33 - add outgoing packet and stream it [skipped with ...] # SKIP reason`
  const skipped = [...output.matchAll(/^ok \d+ - (.*?) \[skipped with trackDeliveries: .*# SKIP/gm)].map((m) => m[1] as string)
  return { code, pass: count('pass'), fail: count('fail'), skipped, output }
}

function failures (result: SuiteResult): string {
  return result.output.split('\n').filter((l) => l.startsWith('not ok')).join('\n')
}

describe("aedes-persistence's abstract suite", () => {
  for (const store of ['level', 'memory'] as const) {
    const backend = store === 'level' ? 'LevelDB' : 'memory-level (--persistence memory)'

    it(`passes on fleetq persistence over ${backend}`, async () => {
      const result = await runSuite(store, 'plain')
      expect(result.fail, failures(result)).toBe(0)
      expect(result.skipped).toEqual([])
      expect(result.pass).toBeGreaterThanOrEqual(50)
      expect(result.code).toBe(0)
    })

    // The configuration the broker runs (trackDeliveries on). The skipped
    // tests, and why, are listed in the suite; what they check is covered the
    // way Aedes drives the persistence in test/store-aedes-persistence.test.ts.
    it(`passes in the production configuration over ${backend}, skipping only the listed tests`, async () => {
      const result = await runSuite(store, 'production')
      expect(result.fail, failures(result)).toBe(0)
      expect(result.skipped.sort()).toEqual(Object.keys(PRODUCTION_SKIPS).sort())
      // 50 abstract tests, 10 skipped, plus the check that every skip names one of them.
      expect(result.pass).toBeGreaterThanOrEqual(41)
      expect(result.code).toBe(0)
    })
  }
})
