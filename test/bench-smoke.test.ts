import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { busyMs, topFrames } from '../bench/cpu-profile-top.js'
import { mqloadMissingPrerequisite, runMqload } from '../bench/mqload.js'
import { parseBenchArgs } from '../bench/options.js'
import { median, summarise } from '../bench/report.js'
import type { ScenarioResult } from '../bench/runner.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'

// The C load generator needs cc and Debian's libmosquitto-dev
// (docs/benchmarks.md "Running"); without them only the pure parts run.
const missing = await mqloadMissingPrerequisite()

describe.skipIf(missing !== null)(`mqload against a real broker${missing === null ? '' : ` (skipped: ${missing})`}`, () => {
  let broker: TestBroker
  beforeAll(async () => { broker = await startBroker() })
  afterAll(async () => { await broker.close() })

  it('builds mqload on demand and counts every QoS 1 delivery of a fan-in', async () => {
    const result = await runMqload({ port: broker.port, pubs: 2, subs: 1, qos: 1, msgs: 500, topic: uniqueTopic('smoke'), timeout: 20 })
    expect(result).toMatchObject({ expected: 1000, received: 1000, missing: 0, dups: 0 })
    expect(result.p99_ms).toBeGreaterThan(0)
    expect(result.slow).toBeLessThanOrEqual(result.samples)
  })

  it('counts a $share group once per message', async () => {
    const result = await runMqload({ port: broker.port, pubs: 1, subs: 2, qos: 1, msgs: 500, share: 'smoke', topic: uniqueTopic('smoke'), timeout: 20 })
    expect(result).toMatchObject({ expected: 500, received: 500, missing: 0, dups: 0 })
  })
})

describe('bench options and summary', () => {
  it('defaults to mqload, two rounds and the four scenarios of the comparison', () => {
    const options = parseBenchArgs(['--compare'])
    if (options === 'help') throw new Error('help')
    expect(options).toMatchObject({ generator: 'mqload', rounds: 2, scenarios: ['qos0-fanin', 'qos1-fanin', 'qos1-fanout', 'qos1-shared'] })
    const mqttjs = parseBenchArgs(['--generator', 'mqttjs'])
    if (mqttjs === 'help') throw new Error('help')
    expect(mqttjs).toMatchObject({ rounds: 1, messages: 20_000 })
    expect(() => parseBenchArgs(['--generator', 'k6'])).toThrow(/--generator/)
  })

  it('takes the median of the rounds and the ratio to Mosquitto', () => {
    const row = (broker: string, round: number, msgPerSec: number): ScenarioResult => ({
      scenario: 'qos1-fanin', broker, round, qos: 1, publishers: 4, subscribers: 1, published: 100, expected: 100, delivered: 100, lost: 0, duplicates: 0,
      seconds: 1, msgPerSec, p50Ms: 1, p99Ms: 2, maxMs: 3, rssMb: 10 * round, cpuSeconds: 0.001, generatorLagMs: 0, timedOut: false, error: null
    })
    const summary = summarise([row('fleetq', 1, 100), row('mosquitto', 1, 200), row('fleetq', 2, 300), row('mosquitto', 2, 400), row('fleetq', 3, 50), row('mosquitto', 3, 300)])
    expect(summary.find((r) => r.broker === 'fleetq')).toMatchObject({ rounds: 3, msgPerSec: 100, ratio: 100 / 300, rssMb: 30, cpuUsPerMsg: 10 })
    expect(summary.find((r) => r.broker === 'mosquitto')?.ratio).toBeNull()
    expect(median([4, 1, 3, 2])).toBe(2.5)
  })
})

describe('cpu-profile-top', () => {
  it('charges each sample interval to the sampled frame and ranks frames by self time', () => {
    const frame = (id: number, functionName: string, url = ''): { id: number, callFrame: { functionName: string, url: string, lineNumber: number, columnNumber: number } } =>
      ({ id, callFrame: { functionName, url, lineNumber: 9, columnNumber: 0 } })
    const frames = topFrames({
      nodes: [frame(1, '(root)'), frame(2, 'hot', 'node:internal/hot'), frame(3, 'cold', 'node:internal/cold'), frame(4, '(idle)')],
      startTime: 0,
      endTime: 10_000,
      samples: [2, 2, 3, 4, 2],
      timeDeltas: [1000, 1000, 1000, 5000, 1000]
    })
    expect(frames.map((f) => [f.name, f.location, f.selfMs])).toEqual([['(idle)', '', 5], ['hot', 'node:internal/hot:10', 3], ['cold', 'node:internal/cold:10', 1]])
    expect(busyMs(frames)).toBe(4)
  })
})
