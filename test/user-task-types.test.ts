import { execFile, spawnSync } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, createWorker, TaskSchemas, type Client, type GateDeadLetter, type Worker } from '../client/index.js'
import { runCli, startCliBroker, userLines, type RunningBroker } from './helpers/cli-process.js'
import { waitUntil } from './helpers/wait.js'
import { tempRoot } from './helpers/temp-root.js'

// A user task type from the config file alone (docs/configuration.md, "Your
// own task types"): the real CLI, a schema dropped into a folder, a device
// publishing with Mosquitto's mosquitto_pub (Debian mosquitto-clients).

const calibration = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://example.com/schemas/sensor-calibration.schema.json',
  type: 'object',
  additionalProperties: false,
  required: ['sensorId', 'offset'],
  properties: {
    sensorId: { type: 'string', minLength: 1 },
    offset: { type: 'number' }
  }
}

const temp = tempRoot('fleetq-user-types-')
const freshDir = (name: string): Promise<string> => temp.freshDir(name)

/** A folder with these files (objects are written as JSON, strings as they are). */
async function schemasFolder (files: Record<string, unknown>): Promise<string> {
  const dir = await freshDir('schemas')
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content, null, 2))
  }
  return dir
}

/** Publishes with mosquitto_pub at QoS 1; resolves once it has exited (after the PUBACK). */
async function mosquittoPub (url: string, clientId: string, topic: string, payload: string): Promise<void> {
  const { port, hostname } = new URL(url)
  await promisify(execFile)('mosquitto_pub', ['-h', hostname, '-p', port, '-q', '1', '-i', clientId, '-t', topic, '-m', payload], { timeout: 20_000 })
}

beforeAll(() => {
  const probe = spawnSync('mosquitto_pub', ['--help'], { encoding: 'utf8' })
  if (probe.error !== undefined) {
    throw new Error(`mosquitto_pub is not installed or not on PATH (${probe.error.message}): ` +
      'these tests need the Debian package mosquitto-clients (apt-get install mosquitto-clients); CI installs it')
  }
})

// Each test spawns Node with tsx, which takes seconds on a loaded two-core machine.
const slow = { timeout: 120_000 }

describe('a user task type from tasks.schemasDir', slow, () => {
  let broker: RunningBroker | undefined
  let client: Client | undefined
  let worker: Worker | undefined
  let deadLetters: mqtt.MqttClient | undefined

  afterAll(async () => {
    await worker?.close()
    await client?.close()
    await deadLetters?.endAsync()
    if (broker !== undefined) expect(await broker.kill('SIGTERM')).toEqual({ code: 0, signal: null })
  })

  it('a worker gets the valid payload; the invalid one goes to $fleetq/dead/{type} with the reason', async () => {
    const schemas = await schemasFolder({ 'sensor-calibration.schema.json': calibration })
    const configDir = await freshDir('config')
    const config = join(configDir, 'fleetq.json')
    // The config file alone: a relative schemasDir is taken from the config file's directory.
    await writeFile(config, JSON.stringify({
      port: 0,
      dataDir: 'data',
      tasks: { schemasDir: join('..', schemas.slice(temp.path.length + 1)), includeExamples: false }
    }))
    broker = await startCliBroker(['--config', config], { cwd: await freshDir('cwd') })

    // The worker's client checks payloads against the same folder.
    const registry = await TaskSchemas.load({ dir: schemas, includeExamples: false })
    client = await connect(broker.url, { clientId: 'calibration-worker', schemas: registry })
    const received: Array<{ payload: unknown, producer: string | undefined }> = []
    worker = await createWorker(client, 'sensor-calibration', (payload, task) => {
      received.push({ payload, producer: task.envelope.producer })
      return 'applied'
    })
    const dead: Array<{ topic: string, record: GateDeadLetter }> = []
    deadLetters = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'dead-letter-reader' })
    deadLetters.on('message', (topic, payload) => { dead.push({ topic, record: JSON.parse(payload.toString()) as GateDeadLetter }) })
    await deadLetters.subscribeAsync('$share/dead-letters/$fleetq/dead/+', { qos: 1 })

    // Invalid first: once the valid one has reached the worker, the invalid
    // one (acknowledged earlier) has had every chance to reach it too.
    await mosquittoPub(broker.url, 'thermo-9', 'tasks/sensor-calibration', JSON.stringify({ sensorId: 't-17', offset: 'high' }))
    await mosquittoPub(broker.url, 'thermo-9', 'tasks/sensor-calibration', JSON.stringify({ sensorId: 't-17', offset: 0.4 }))

    await waitUntil(() => received.length >= 1 && dead.length >= 1, 'the task at the worker and the dead letter', 20_000,
      () => JSON.stringify({ received, dead }))
    expect(received).toEqual([{ payload: { sensorId: 't-17', offset: 0.4 }, producer: 'thermo-9' }])
    expect(dead).toHaveLength(1)
    expect(dead[0]!.topic).toBe('$fleetq/dead/sensor-calibration')
    expect(dead[0]!.record).toMatchObject({
      reason: 'validation',
      taskType: 'sensor-calibration',
      topic: 'tasks/sensor-calibration',
      clientId: 'thermo-9',
      payload: JSON.stringify({ sensorId: 't-17', offset: 'high' })
    })
    expect(dead[0]!.record.issues).toEqual([{ path: '/offset', message: 'must be number', keyword: 'type' }])
  })

  it('with includeExamples false, a shipped example type is unknown: dead-lettered as unknown-type', async () => {
    expect(broker, 'the broker of the previous test').toBeDefined()
    const dead: GateDeadLetter[] = []
    deadLetters!.on('message', (_topic, payload) => { dead.push(JSON.parse(payload.toString()) as GateDeadLetter) })
    await mosquittoPub(broker!.url, 'camera-1', 'tasks/thumbnail', JSON.stringify({ imageUrl: 'https://example.com/a.png', width: 1, height: 1 }))
    await waitUntil(() => dead.length > 0, 'the dead letter of tasks/thumbnail')
    expect(dead[0]).toMatchObject({ reason: 'unknown-type', taskType: 'thumbnail', clientId: 'camera-1' })
  })
})

describe('a bad schema stops the CLI with one line naming the file, exit 2', slow, () => {
  /** Starts `fleetq broker` on `files` (by --schemas-dir) expecting it to fail; returns its one line and the folder. */
  async function refused (files: Record<string, unknown>, bad: string, extra: string[] = []): Promise<string> {
    const dir = await schemasFolder(files)
    const result = await runCli(['broker', '--port', '0', '--persistence', 'memory', '--schemas-dir', dir, ...extra], { cwd: await freshDir('cwd') })
    expect(result.signal).toBeNull()
    expect(result.code, result.stderr).toBe(2)
    // One line, no stack trace, no JSON log noise at the default level.
    expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1)
    const [line] = userLines(result.stderr)
    expect(line).toMatch(/ \(FLEETQ_SCHEMA_INVALID\)$/)
    expect(line!.startsWith(`fleetq: ${join(dir, bad)}: `), line).toBe(true)
    return line!.slice(`fleetq: ${join(dir, bad)}: `.length)
  }

  it.concurrent('invalid JSON', async () => {
    expect(await refused({ 'sensor-calibration.schema.json': '{ "type": "object", ' }, 'sensor-calibration.schema.json'))
      .toMatch(/^not valid JSON: /)
  })

  it.concurrent('not a valid JSON Schema', async () => {
    const schema = { ...calibration, properties: { offset: { type: 'numbr' } } }
    expect(await refused({ 'sensor-calibration.schema.json': schema }, 'sensor-calibration.schema.json'))
      .toMatch(/schema is invalid: data\/properties\/offset\/type must be equal to one of the allowed values/)
  })

  it.concurrent('an $id naming another type', async () => {
    const schema = { ...calibration, $id: 'https://example.com/schemas/thumbnail.schema.json' }
    expect(await refused({ 'valve-test.schema.json': schema }, 'valve-test.schema.json'))
      .toBe('$id https://example.com/schemas/thumbnail.schema.json names thumbnail.schema.json, not valve-test.schema.json: the file name is the task type (FLEETQ_SCHEMA_INVALID)')
  })

  it.concurrent('no $id, a name that is not a task type, a shipped type taken', async () => {
    const { $id: _id, ...noId } = calibration
    expect(await refused({ 'sensor-calibration.schema.json': noId }, 'sensor-calibration.schema.json')).toBe('the schema has no $id (FLEETQ_SCHEMA_INVALID)')
    expect(await refused({ 'Sensor.schema.json': { ...calibration, $id: 'urn:x:sensor' } }, 'Sensor.schema.json'))
      .toMatch(/^task type "Sensor" must match /)
    const thumbnail = { ...calibration, $id: 'https://example.com/schemas/thumbnail.schema.json' }
    expect(await refused({ 'thumbnail.schema.json': thumbnail }, 'thumbnail.schema.json')).toBe('task type "thumbnail" is already registered (FLEETQ_SCHEMA_INVALID)')
    // ...which is the user's to take once the examples are left out.
    const taken = await schemasFolder({ 'thumbnail.schema.json': thumbnail })
    const ok = await startCliBroker(['--port', '0', '--persistence', 'memory', '--schemas-dir', taken, '--include-examples', 'false'], { cwd: await freshDir('cwd') })
    expect(await ok.kill()).toEqual({ code: 0, signal: null })
  })

  it.concurrent('a schemasDir that does not exist', async () => {
    const dir = join(temp.path, 'no-such-folder')
    const result = await runCli(['broker', '--port', '0', '--persistence', 'memory'], { env: { FLEETQ_SCHEMAS_DIR: dir }, cwd: await freshDir('cwd') })
    expect(result.code).toBe(2)
    expect(userLines(result.stderr)).toEqual([expect.stringMatching(new RegExp(`^fleetq: ${dir}: cannot read the schema directory: .*ENOENT.* \\(FLEETQ_SCHEMA_INVALID\\)$`))])
  })
})
