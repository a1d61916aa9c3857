import { describe, expect, it } from 'vitest'
import { spawnNodeChild } from './helpers/child-process.js'

interface FuzzResult {
  seed: number
  packets: number
  connections: number
  brokerCrashed: boolean
  pair: { sent: number, received: number, missing: number, errors: string[] }
  rssMbBefore: number | null
  rssMbAfter: number | null
  durationMs: number
}

/*
 * The fuzz harness (bench/fuzz.ts, docs/mqtt-adapter.md "Fuzzing") against a
 * broker in its own process: random and mutated packets over many raw
 * connections while a well-behaved pair exchanges QoS 1 messages. A fixed
 * seed, so a failure here replays with `npm run fuzz -- --seed 10 --packets 20000`.
 */
describe('fuzz harness', () => {
  it('20,000 random and mutated packets: the broker stays up, the pair loses nothing', async () => {
    const run = spawnNodeChild(new URL('../bench/fuzz.ts', import.meta.url), ['--packets', '20000', '--connections', '32', '--seed', '10'])
    const line = await run.waitForLine((l) => l.startsWith('{'), 'the result line', 55_000)
    const exit = await run.exited
    const result = JSON.parse(line) as FuzzResult
    expect(result, run.stderr()).toMatchObject({ seed: 10, packets: 20000, brokerCrashed: false, pair: { missing: 0, errors: [] } })
    expect(result.connections).toBeGreaterThan(100)
    expect(result.pair.sent).toBeGreaterThan(0)
    expect(result.pair.received).toBe(result.pair.sent)
    expect(exit.code).toBe(0)
  }, 60_000)
})
