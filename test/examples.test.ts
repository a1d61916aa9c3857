import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { startBroker, type TestBroker } from './helpers/start-broker.js'

const run = promisify(execFile)

/**
 * Runs `examples/<name>/main.ts` as `npm run example:<name>` would: against a
 * fresh broker at `url`, or, without one, an example that starts its own.
 */
async function runExample (name: string, url?: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', `examples/${name}/main.ts`], {
    env: { ...process.env, ...(url === undefined ? {} : { FLEETQ_URL: url }) },
    timeout: 60_000
  })
  return stdout
}

describe('examples run', () => {
  let b: TestBroker | undefined
  afterEach(async () => { await b?.close() })

  it('iot-telemetry: the dashboard sees every device state (retained) and the live readings', async () => {
    b = await startBroker()
    const out = await runExample('iot-telemetry', b.url)
    expect(out).toContain('dashboard saw 6 devices')
    expect(out.match(/: state \{"online":true/g)?.length).toBe(6)
    expect(out.match(/, 5 live readings/g)?.length).toBe(6)
  })

  it('task-worker: tasks complete across two workers, the flaky one on its retry, invalid ones refused and dead-lettered', async () => {
    b = await startBroker()
    const out = await runExample('task-worker', b.url)
    expect(out).toContain('completed 6 thumbnails')
    expect(out).toMatch(/attempt 1 failed \(upstream timeout\)/)
    expect(out).toMatch(/attempt 2 rendered 320x240/)
    expect(out).toMatch(/refused by submit\(\): \/width must be integer/)
    expect(out).toMatch(/dead letter: validation from camera-7: \/width must be integer/)
  })

  it('scheduling: a delayed command and task, a refused delay, a heartbeat schedule, a refused schedule', async () => {
    b = await startBroker()
    const out = await runExample('scheduling', b.url)
    expect(out).toMatch(/device got "reboot" after (1\.\d|2\.\d) s/)
    expect(out).toMatch(/delayed task: rendered 64x48 after/)
    expect(out).toContain('dead letter: delay-not-a-number for $delayed/soon/fleet/site1/dev7/cmd')
    expect(out).toContain('schedule heartbeat (* * * * * *, UTC) next run set')
    expect(out).toContain('heartbeat fired 2 times')
    expect(out).toContain('refused: FLEETQ_TIMEZONE_INVALID')
    expect(out).toContain('schedules left: 0')
  })

  it('user-task-type: the CLI broker learns a task type from a schema folder; mosquitto_pub submits, a worker runs it, a bad payload is dead-lettered', async () => {
    // Starts `fleetq broker --config examples/user-task-type/fleetq.json` itself.
    const out = await runExample('user-task-type')
    expect(out).toContain('worker got sensor-calibration from thermostat-12: sensor t-17, offset 0.4, scale 1.02')
    expect(out).toContain('dead letter on $fleetq/dead/sensor-calibration: validation from thermostat-12: /offset must be number')
    expect(out).toContain('worker ran 1 task')
    expect(out).toContain('broker stopped')
  })
})
