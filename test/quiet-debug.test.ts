import { describe, expect, it } from 'vitest'
import { spawnNodeChild } from './helpers/child-process.js'
import { tempRoot } from './helpers/temp-root.js'

/**
 * Tripwire for broker/mqtt/internals/quiet-debug.ts: loading the broker
 * before mqtt-packet wraps mqtt-packet's `debug` loggers, which then build no
 * argument array while disabled, and still log when DEBUG enables them.
 */
const root = tempRoot('fleetq-quiet-debug-')

interface ChildReport { installed: boolean, quieted: number, payload: string }

async function runChild (env: Record<string, string>): Promise<{ report: ChildReport, stderr: string }> {
  const child = spawnNodeChild(new URL('./helpers/quiet-debug-child.ts', import.meta.url), [await root.freshDir()], env)
  const line = await child.waitForLine((l) => l.startsWith('{'), 'the quiet debug report')
  const exit = await child.exited
  expect(exit.code, child.stderr()).toBe(0)
  return { report: JSON.parse(line) as ChildReport, stderr: child.stderr() }
}

describe('quiet debug: mqtt-packet loggers allocate nothing while disabled', () => {
  it('a broker process wraps the parser and writer loggers, and messages still flow', async () => {
    const { report, stderr } = await runChild({ DEBUG: '' })
    expect(report.installed).toBe(true)
    // parser.js and writeToStream.js each make one logger at load
    expect(report.quieted).toBeGreaterThanOrEqual(2)
    expect(report.payload).toBe('hello')
    expect(stderr).not.toContain('mqtt-packet:')
  })

  it('DEBUG=mqtt-packet:* still turns the wrapped loggers on', async () => {
    const { report, stderr } = await runChild({ DEBUG: 'mqtt-packet:*', DEBUG_COLORS: 'no' })
    expect(report.quieted).toBeGreaterThanOrEqual(2)
    expect(report.payload).toBe('hello')
    expect(stderr).toMatch(/mqtt-packet:parser _parsePublish/)
    expect(stderr).toMatch(/mqtt-packet:writeToStream publish: packet/)
  })
})
