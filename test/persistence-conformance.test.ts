import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const suite = fileURLToPath(new URL('./conformance/aedes-persistence.suite.ts', import.meta.url))

interface SuiteResult { code: number | null, pass: number, fail: number, output: string }

// aedes-persistence's abstract suite is written for node:test (t.plan,
// t.assert), so it runs in its own node process and we read its TAP summary.
async function runSuite (store: 'level' | 'memory'): Promise<SuiteResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', suite], {
    env: { ...process.env, FLEETQ_SUITE_STORE: store },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString() })
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
  const count = (name: string): number => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(output)?.[1] ?? -1)
  return { code, pass: count('pass'), fail: count('fail'), output }
}

describe("aedes-persistence's abstract suite", () => {
  it('passes on fleetq persistence over LevelDB', async () => {
    const result = await runSuite('level')
    expect(result.fail, result.output.split('\n').filter((l) => l.startsWith('not ok')).join('\n')).toBe(0)
    expect(result.pass).toBeGreaterThanOrEqual(50)
    expect(result.code).toBe(0)
  })

  it('passes on fleetq persistence over memory-level (--persistence memory)', async () => {
    const result = await runSuite('memory')
    expect(result.fail).toBe(0)
    expect(result.pass).toBeGreaterThanOrEqual(50)
    expect(result.code).toBe(0)
  })
})
