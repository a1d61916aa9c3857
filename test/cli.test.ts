import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo, type Server } from 'node:net'
import { constants } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadBrokerConfig, SETTINGS } from '../broker/config.js'
import { brokerDefaults, createBroker } from '../broker/index.js'
import { resolveBrokerOptions } from '../broker/options.js'
import { ConfigError } from '../protocol/errors.js'
import { runCli, startCliBroker, userLines, type RunningBroker } from './helpers/cli-process.js'
import { startBroker } from './helpers/start-broker.js'
import { waitUntil } from './helpers/wait.js'
import { tempRoot } from './helpers/temp-root.js'

const temp = tempRoot('fleetq-cli-')
const freshDir = (name: string): Promise<string> => temp.freshDir(name)

async function writeConfig (config: unknown): Promise<string> {
  const path = join(await freshDir('config'), 'fleetq.json')
  await writeFile(path, typeof config === 'string' ? config : JSON.stringify(config))
  return path
}

/** A process's state letter from /proc (Linux): 'T' once stopped. */
function processState (pid: number): string {
  return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').charAt(0)
}

/** The signals pending for a whole process (ShdPnd in /proc/{pid}/status), by name. */
function pendingSignals (pid: number): string[] {
  const mask = BigInt('0x' + (/^ShdPnd:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0'))
  return Object.entries(constants.signals).filter(([, n]) => (mask >> BigInt(n - 1)) & 1n).map(([name]) => name)
}

/** Holds a port so a broker that picks it fails with FLEETQ_PORT_IN_USE. */
async function occupyPort (): Promise<{ server: Server, port: number }> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as AddressInfo).port }
}

async function release (server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()))
}


// Every test spawns Node with tsx, which takes seconds on a loaded two-core machine.
const slow = { timeout: 120_000 }

describe('fleetq broker', slow, () => {
  it('starts, and answers an MQTT CONNECT from mqtt.js', async () => {
    const broker = await startCliBroker(['--port', '0', '--data-dir', await freshDir('data')])
    try {
      expect(broker.listening.persistence).toBe('level')
      const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'cli-connect' })
      expect(client.connected).toBe(true)
      await client.endAsync()
    } finally {
      await broker.kill('SIGKILL')
    }
  })

  it('on SIGTERM disconnects clients, closes the store and exits 0', async () => {
    const dataDir = await freshDir('data')
    const broker = await startCliBroker(['--port', '0', '--data-dir', dataDir])
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'cli-term' })
    await client.publishAsync('cli/retained', 'kept', { qos: 1, retain: true })
    const clientClosed = new Promise<void>((resolve) => client.once('close', () => resolve()))

    const exit = await broker.kill('SIGTERM')

    expect(exit).toEqual({ code: 0, signal: null })
    await clientClosed
    await broker.waitForLog('shutting down')
    await broker.waitForLog('broker closed')
    client.end(true)
    // The LevelDB lock is released and what was stored is there.
    const reopened = await startBroker({ dataDir })
    try {
      const reader = await mqtt.connectAsync(reopened.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'cli-reader' })
      const retained = new Promise<string>((resolve) => reader.on('message', (_topic, payload) => resolve(payload.toString())))
      await reader.subscribeAsync('cli/retained', { qos: 1 })
      expect(await retained).toBe('kept')
      await reader.endAsync()
    } finally {
      await reopened.close()
    }
  })

  it('on SIGINT exits 0 and releases the data directory', async () => {
    const dataDir = await freshDir('data')
    const broker = await startCliBroker(['--port', '0', '--data-dir', dataDir])
    expect(await broker.kill('SIGINT')).toEqual({ code: 0, signal: null })
    await broker.waitForLog('shutting down')
    const next = await startBroker({ dataDir })
    await next.close()
  })

  it('exits 1 at once on a second signal while shutting down', async () => {
    const broker = await startCliBroker(['--port', '0', '--data-dir', await freshDir('data')])
    // Two different signals: the kernel merges a pending signal with itself, not with another.
    // Sent while the child is stopped, so both are pending when it runs again: on a loaded
    // machine this process can otherwise be descheduled between the two kills for longer
    // than the child takes to close.
    // Each step is waited for in /proc: a SIGSTOP not yet acted on when
    // SIGCONT is sent is discarded by it, and the two signals could then
    // reach the child apart after all.
    const pid = broker.child.pid as number
    broker.child.kill('SIGSTOP')
    await waitUntil(() => processState(pid) === 'T', 'the child to stop')
    broker.child.kill('SIGTERM')
    broker.child.kill('SIGINT')
    await waitUntil(() => pendingSignals(pid).includes('SIGTERM') && pendingSignals(pid).includes('SIGINT'), 'both signals pending')
    broker.child.kill('SIGCONT')
    expect(await broker.exited).toEqual({ code: 1, signal: null })
    await broker.waitForLog('second signal while shutting down; exiting without a clean close')
  })
})

describe('fleetq broker refuses bad input with one line and a non-zero exit', slow, () => {
  /** Runs `fleetq broker <args>` expecting it to fail; returns its one user-facing line. */
  async function failure (args: string[], env: Record<string, string> = {}, expectedCode = 2): Promise<string> {
    const result = await runCli(['broker', ...args], { env, cwd: await freshDir('cwd') })
    expect(result.signal).toBeNull()
    expect(result.code, result.stderr).toBe(expectedCode)
    // One line, no stack trace, no JSON log noise at the default level.
    expect(result.stderr.trim().split('\n'), result.stderr).toHaveLength(1)
    const lines = userLines(result.stderr)
    expect(lines).toHaveLength(1)
    return lines[0]!
  }

  it('port in use', async () => {
    const { server, port } = await occupyPort()
    try {
      const line = await failure(['--port', String(port), '--host', '127.0.0.1', '--persistence', 'memory'], {}, 1)
      expect(line).toBe(`fleetq: port ${port} on 127.0.0.1 is already in use (FLEETQ_PORT_IN_USE)`)
    } finally {
      await release(server)
    }
  })

  it('data directory not writable (a path under a file)', async () => {
    const file = join(await freshDir('file'), 'not-a-dir')
    await writeFile(file, '')
    const line = await failure(['--port', '0', '--data-dir', join(file, 'data')], {}, 1)
    expect(line).toMatch(/^fleetq: data directory .*not-a-dir\/data is not writable: .*ENOTDIR.* \(FLEETQ_DATA_DIR_NOT_WRITABLE\)$/)
  })

  it('a config schedule that can never fire', async () => {
    const config = await writeConfig({ port: 0, persistence: 'memory', schedules: [{ name: 'feb30', cron: '0 0 30 2 *', topic: 'a' }] })
    const line = await failure(['--config', config])
    expect(line).toBe('fleetq: cron expression "0 0 30 2 *" for schedule "feb30" never fires (FLEETQ_CRON_INVALID)')
  })

  it('data directory locked by another broker process', async () => {
    const dataDir = await freshDir('data')
    const first = await startCliBroker(['--port', '0', '--data-dir', dataDir])
    try {
      const line = await failure(['--port', '0', '--data-dir', dataDir], {}, 1)
      expect(line).toBe(`fleetq: data directory ${dataDir} is in use by another broker (LevelDB lock held) (FLEETQ_DATA_DIR_LOCKED)`)
    } finally {
      expect(await first.kill()).toEqual({ code: 0, signal: null })
    }
  })

  it.concurrent('config file: wrong type', async () => {
    const path = await writeConfig({ port: 'abc' })
    expect(await failure(['--config', path]))
      .toBe(`fleetq: invalid config "port": must be an integer from 0 to 65535, got "abc" (in ${path}) (FLEETQ_CONFIG_INVALID)`)
  })

  it.concurrent('config file: unknown key, with a suggestion', async () => {
    const path = await writeConfig({ port: 0, datadir: '/tmp/x' })
    expect(await failure(['--config', path]))
      .toBe(`fleetq: invalid config "datadir": is not a known setting (did you mean "dataDir"?) (in ${path}) (FLEETQ_CONFIG_INVALID)`)
  })

  it.concurrent('config file: not JSON', async () => {
    const path = await writeConfig('{ port: 1883 ')
    expect(await failure(['--config', path])).toMatch(new RegExp(`^fleetq: invalid config "config": ${path} is not valid JSON: .+ \\(FLEETQ_CONFIG_INVALID\\)$`))
  })

  it.concurrent('bad --persistence', async () => {
    expect(await failure(['--persistence', 'disk']))
      .toBe('fleetq: invalid config "--persistence": must be one of "level", "memory", got "disk" (FLEETQ_CONFIG_INVALID)')
  })

  it.concurrent('bad environment variables', async () => {
    expect(await failure([], { FLEETQ_PORT: 'eighteen' }))
      .toBe('fleetq: invalid config "FLEETQ_PORT": must be an integer from 0 to 65535, got "eighteen" (FLEETQ_CONFIG_INVALID)')
    expect(await failure([], { FLEETQ_LOG_LEVEL: 'loud' }))
      .toMatch(/^fleetq: invalid config "FLEETQ_LOG_LEVEL": must be one of "fatal", .*, got "loud" \(FLEETQ_CONFIG_INVALID\)$/)
  })

  it.concurrent('an unknown flag is a usage error', async () => {
    expect(await failure(['--prot', '1884'])).toBe("fleetq: unknown option '--prot' (Did you mean --port?)")
  })
})

describe('fleetq broker precedence: flag > environment > config file > default', slow, () => {
  let held: { server: Server, port: number }[] = []
  beforeAll(async () => { held = await Promise.all([occupyPort(), occupyPort()]) })
  afterAll(async () => { await Promise.all(held.map(({ server }) => release(server))) })

  /** Starts a broker expecting it to listen on `winner`; the losing sources name ports that are held, so picking one fails. */
  async function listensOn (winner: number, args: string[], env: Record<string, string>, config: Record<string, unknown>): Promise<void> {
    const configPath = await writeConfig({ persistence: 'memory', ...config })
    const broker: RunningBroker = await startCliBroker([...args, '--config', configPath], { env, cwd: await freshDir('cwd') })
    try {
      expect(broker.port).toBe(winner)
    } finally {
      await broker.kill()
    }
  }

  it('port: flag beats env beats file', async () => {
    const [a, b] = held.map((h) => h.port) as [number, number]
    // Free a port for the winner only now; the losers stay held.
    const winner = await occupyPort()
    await release(winner.server)
    await listensOn(winner.port, ['--port', String(winner.port)], { FLEETQ_PORT: String(b) }, { port: a })
    await listensOn(winner.port, [], { FLEETQ_PORT: String(winner.port) }, { port: a })
    await listensOn(winner.port, [], {}, { port: winner.port })
  })

  it('dataDir: default is ./data in the working directory; a relative path in the file is next to the file', async () => {
    const cwd = await freshDir('cwd')
    const byDefault = await startCliBroker(['--port', '0'], { cwd })
    expect(byDefault.listening.dataDir).toBe('./data')
    await byDefault.kill()

    const configPath = await writeConfig({ dataDir: 'store' })
    const fromFile = await startCliBroker(['--port', '0', '--config', configPath], { cwd })
    expect(fromFile.listening.dataDir).toBe(join(configPath, '..', 'store'))
    await fromFile.kill()
  })
})

describe('loadBrokerConfig', () => {
  it('merges every setting: flag > env > file', async () => {
    const path = await writeConfig({
      $schema: 'https://fleetq.dev/schemas/broker-config.schema.json',
      port: 1,
      host: 'file-host',
      dataDir: '/file',
      persistence: 'memory',
      maxQueuedPerClient: 10,
      logLevel: 'warn'
    })
    const env = { FLEETQ_CONFIG: path, FLEETQ_PORT: '2', FLEETQ_HOST: 'env-host', FLEETQ_MAX_QUEUED: '20', FLEETQ_LOG_LEVEL: '' }
    const { values, configFile } = await loadBrokerConfig({ port: '3', dataDir: '/flag' }, env)
    expect(configFile).toBe(path)
    expect(values).toEqual({
      port: 3,
      host: 'env-host',
      dataDir: '/flag',
      persistence: 'memory',
      maxQueuedPerClient: 20,
      // An empty variable counts as unset.
      logLevel: 'warn'
    })
  })

  it('leaves unset settings out, for createBroker to default', async () => {
    expect((await loadBrokerConfig({}, {})).values).toEqual({})
  })

  it('prefers --config over FLEETQ_CONFIG', async () => {
    const flagFile = await writeConfig({ port: 5 })
    const envFile = await writeConfig({ port: 6 })
    const { values } = await loadBrokerConfig({ config: flagFile }, { FLEETQ_CONFIG: envFile })
    expect(values.port).toBe(5)
  })

  it('refuses a value out of range, naming the file', async () => {
    const path = await writeConfig({ maxQueuedPerClient: -1 })
    await expect(loadBrokerConfig({ config: path }, {})).rejects
      .toThrow(`invalid config "maxQueuedPerClient": must be an integer >= 0, got -1 (in ${path})`)
  })

  it('takes delayed bounds and schedules from the file, and names the field at fault inside them', async () => {
    const schedules = [{ name: 'beat', cron: '*/5 * * * * *', timezone: 'Europe/Berlin', topic: 'fleet/beat', payload: { ok: true } }]
    const good = await writeConfig({ delayed: { maxDelaySeconds: 3600, maxPending: 10 }, schedules })
    const { values } = await loadBrokerConfig({ config: good }, {})
    expect(values).toMatchObject({ delayed: { maxDelaySeconds: 3600, maxPending: 10 }, schedules })
    const unknownField = await writeConfig({ schedules: [{ ...schedules[0], every: '5s' }] })
    await expect(loadBrokerConfig({ config: unknownField }, {})).rejects
      .toThrow(`invalid config "schedules.0.every": is not a known setting (known: name, cron, timezone, topic, task, payload, qos, retain, catchUp, maxAttempts, timeoutMs) (in ${unknownField})`)
    const badBound = await writeConfig({ delayed: { maxPending: -1 } })
    await expect(loadBrokerConfig({ config: badBound }, {})).rejects.toThrow(`invalid config "delayed.maxPending": must be an integer >= 0, got -1 (in ${badBound})`)
    const badMode = await writeConfig({ schedules: [{ ...schedules[0], catchUp: 'sometimes' }] })
    await expect(loadBrokerConfig({ config: badMode }, {})).rejects.toThrow(/"schedules.0.catchUp": must be one of "none", "last", "all", got "sometimes"/)
    const noCron = await writeConfig({ schedules: [{ name: 'x', topic: 'a' }] })
    await expect(loadBrokerConfig({ config: noCron }, {})).rejects.toThrow(`invalid config "schedules.0.cron": is required (in ${noCron})`)
  })

  it('takes tasks, shared-group and delayed settings from file, env and flags, merged setting by setting', async () => {
    const path = await writeConfig({
      tasks: { schemasDir: 'my-schemas', allowUnknownTypes: true, idempotencyWindowMs: 1000, topicPrefix: 'jobs/', maxIdempotencyKeys: 10 },
      shared: { defaults: { prefetch: 2, strategy: 'hash' }, groups: { thumbnails: { ackTimeoutMs: 60_000, overflow: 'drop-new' } } },
      delayed: { maxDelaySeconds: 60 }
    })
    const env = {
      FLEETQ_CONFIG: path,
      FLEETQ_IDEMPOTENCY_WINDOW_MS: '2000',
      FLEETQ_GROUP_PREFETCH: '3',
      FLEETQ_ALLOW_UNKNOWN_TYPES: 'no',
      FLEETQ_MAX_DELAYED: '7'
    }
    const { values } = await loadBrokerConfig({ groupPrefetch: '4', maxDelaySeconds: '1.5', includeExamples: true, maxPayloadBytes: '1024' }, env)
    expect(values).toEqual({
      tasks: {
        // A relative folder in the file is next to the file.
        schemasDir: join(path, '..', 'my-schemas'),
        allowUnknownTypes: false,
        idempotencyWindowMs: 2000,
        topicPrefix: 'jobs/',
        maxIdempotencyKeys: 10,
        includeExamples: true,
        maxPayloadBytes: 1024
      },
      shared: { defaults: { prefetch: 4, strategy: 'hash' }, groups: { thumbnails: { ackTimeoutMs: 60_000, overflow: 'drop-new' } } },
      delayed: { maxDelaySeconds: 1.5, maxPending: 7 }
    })
  })

  it('names the setting at fault inside tasks and shared, by its path, flag or variable', async () => {
    const cases: Array<[unknown, string]> = [
      [{ tasks: { topicPrefix: 'tasks' } }, '"tasks.topicPrefix": must end with "/" and have no wildcards, got "tasks"'],
      [{ tasks: { schemaDir: 'x' } }, '"tasks.schemaDir": is not a known setting (did you mean "tasks.schemasDir"?)'],
      [{ schemasDir: 'x' }, '"schemasDir": is not a known setting (did you mean "tasks.schemasDir"?)'],
      [{ tasks: { allowUnknownTypes: 'yes' } }, '"tasks.allowUnknownTypes": must be true or false, got "yes"'],
      [{ shared: { groups: { thumbs: { prefetch: 0 } } } }, '"shared.groups.thumbs.prefetch": must be an integer >= 1, got 0'],
      [{ shared: { defaults: { strategy: 'fastest' } } }, '"shared.defaults.strategy": must be one of "least-inflight", "round-robin", "random", "hash", got "fastest"'],
      [{ shared: { groups: { thumbs: { ackTimeoutMs: 10 } } } }, '"shared.groups.thumbs.ackTimeoutMs": must be an integer >= 100, got 10'],
      [{ delayed: { maxDelaySeconds: 0 } }, '"delayed.maxDelaySeconds": must be a number > 0, got 0'],
      [{ tasks: [] }, '"tasks": must be an object, got []']
    ]
    for (const [config, message] of cases) {
      const path = await writeConfig(config)
      await expect(loadBrokerConfig({ config: path }, {})).rejects.toThrow(`invalid config ${message} (in ${path})`)
    }
    await expect(loadBrokerConfig({}, { FLEETQ_ALLOW_UNKNOWN_TYPES: 'maybe' })).rejects
      .toThrow('invalid config "FLEETQ_ALLOW_UNKNOWN_TYPES": must be true or false, got "maybe"')
    await expect(loadBrokerConfig({ groupStrategy: 'fastest' }, {})).rejects
      .toMatchObject({ key: '--group-strategy', code: 'FLEETQ_CONFIG_INVALID' })
    await expect(loadBrokerConfig({}, { FLEETQ_GROUP_ACK_TIMEOUT_MS: '50' })).rejects
      .toThrow('invalid config "FLEETQ_GROUP_ACK_TIMEOUT_MS": must be an integer >= 100, got 50')
    await expect(loadBrokerConfig({ maxDelaySeconds: 'soon' }, {})).rejects
      .toThrow('invalid config "--max-delay-seconds": must be a number > 0, got "soon"')
  })

  it('refuses a missing config file with key "config"', async () => {
    const path = join(temp.path, 'no-such-config.json')
    await expect(loadBrokerConfig({}, { FLEETQ_CONFIG: path })).rejects
      .toMatchObject({ key: 'config', message: `invalid config "config": cannot read ${path}: no such file` })
  })

  it('refuses numbers that are not integers', async () => {
    await expect(loadBrokerConfig({ maxQueued: '10k' }, {})).rejects
      .toThrow('invalid config "--max-queued": must be an integer >= 0, got "10k"')
    await expect(loadBrokerConfig({ port: '1883.5' }, {})).rejects.toMatchObject({ key: '--port' })
  })

  it('throws ConfigError naming the source of a bad value', async () => {
    const err = await loadBrokerConfig({}, { FLEETQ_MAX_QUEUED: '-5' }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigError)
    expect(err).toMatchObject({ key: 'FLEETQ_MAX_QUEUED', code: 'FLEETQ_CONFIG_INVALID' })
    await expect(loadBrokerConfig({ host: '' }, {})).rejects.toMatchObject({ key: '--host', message: 'invalid config "--host": must be a non-empty string, got ""' })
  })
})

describe('fleetq --help', slow, () => {
  it('prints usage on stdout and exits 0', async () => {
    const top = await runCli(['--help'])
    expect(top.code).toBe(0)
    expect(top.stdout).toContain('Usage: fleetq')
    const broker = await runCli(['broker', '--help'])
    expect(broker.code).toBe(0)
    expect(broker.stdout).toContain('Usage: fleetq broker')
    for (const name of ['--port', '--host', '--data-dir', '--persistence', '--max-queued', '--config', '--log-level', 'FLEETQ_MAX_QUEUED', 'FLEETQ_CONFIG']) {
      expect(broker.stdout).toContain(name)
    }
    for (const setting of SETTINGS) {
      expect(broker.stdout).toContain(setting.flag)
      expect(broker.stdout).toContain(setting.env)
      expect(broker.stdout).toContain(setting.key)
    }
  })
})

describe('createBroker options: one schema and one set of defaults with the config file', () => {
  it('fills in every default from the schema', () => {
    const resolved = resolveBrokerOptions({})
    expect(resolved).toEqual(structuredClone(brokerDefaults))
    expect(resolved.shared.defaults).toEqual({
      strategy: 'least-inflight', prefetch: 5, ackTimeoutMs: 180_000, maxLength: 100_000, overflow: 'drop-oldest', messageTtlMs: 0, idleTimeoutMs: 0
    })
    expect(resolved.tasks).toMatchObject({ includeExamples: true, allowUnknownTypes: false, maxPayloadBytes: 262_144, idempotencyWindowMs: 86_400_000 })
    expect(resolved.delayed).toEqual({ maxDelaySeconds: 4_294_967, maxPending: 1_000_000 })
    // The defaults stay as they are whatever the caller does with its copy.
    resolved.shared.defaults.prefetch = 99
    expect(brokerDefaults.shared.defaults.prefetch).toBe(5)
    expect(Object.isFrozen(brokerDefaults.shared.defaults)).toBe(true)
  })

  it('merges options over the defaults setting by setting', () => {
    const resolved = resolveBrokerOptions({ tasks: { schemasDir: '/s' }, shared: { defaults: { prefetch: 2 }, groups: { g: { strategy: 'hash' } } }, delayed: { maxPending: 5 } })
    expect(resolved.tasks).toMatchObject({ schemasDir: '/s', includeExamples: true, idempotencyWindowMs: 86_400_000 })
    expect(resolved.shared).toEqual({ defaults: { ...brokerDefaults.shared.defaults, prefetch: 2 }, groups: { g: { strategy: 'hash' } } })
    expect(resolved.delayed).toEqual({ maxDelaySeconds: 4_294_967, maxPending: 5 })
  })

  it('refuses what the config file refuses, naming the setting by its path', async () => {
    await expect(createBroker({ port: 70_000 })).rejects.toMatchObject({ key: 'port', message: 'invalid config "port": must be an integer from 0 to 65535, got 70000' })
    await expect(createBroker({ shared: { groups: { g: { strategy: 'fastest' as 'hash' } } } })).rejects.toMatchObject({
      key: 'shared.groups.g.strategy', code: 'FLEETQ_CONFIG_INVALID'
    })
    await expect(createBroker({ tasks: { idempotencyWindowMs: -1 } })).rejects
      .toThrow('invalid config "tasks.idempotencyWindowMs": must be an integer >= 0, got -1')
    await expect(createBroker({ prot: 1883 } as never)).rejects.toThrow('invalid config "prot": is not a known setting (did you mean "port"?)')
  })

  it('settings from a config file reach the task gate and the groups', async () => {
    const path = await writeConfig({
      port: 0,
      persistence: 'memory',
      logLevel: 'silent',
      tasks: { topicPrefix: 'jobs/', deadLetterPrefix: 'ops/dead/', maxPayloadBytes: 100, wrapMaxAttempts: 7, wrapTimeoutMs: 1234 }
    })
    const { values } = await loadBrokerConfig({ config: path }, {})
    const broker = await createBroker(values)
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 4, reconnectPeriod: 0, clientId: 'cfg-reader' })
    try {
      const got: Array<{ topic: string, body: Record<string, unknown> }> = []
      client.on('message', (topic, payload) => { got.push({ topic, body: JSON.parse(payload.toString()) as Record<string, unknown> }) })
      await client.subscribeAsync(['$share/thumbnail/jobs/thumbnail', '$share/dead-letters/ops/dead/+'], { qos: 1 })
      await client.publishAsync('jobs/thumbnail', JSON.stringify({ imageUrl: 'https://example.com/a.png', width: 1, height: 1 }), { qos: 1 })
      await client.publishAsync('jobs/thumbnail', JSON.stringify({ imageUrl: `https://example.com/${'a'.repeat(200)}.png`, width: 1, height: 1 }), { qos: 1 })
      await waitUntil(() => got.length >= 2, 'the wrapped task and the dead letter', 10_000, () => JSON.stringify(got))
      const task = got.find((m) => m.topic === 'jobs/thumbnail')
      expect(task?.body).toMatchObject({ type: 'thumbnail', maxAttempts: 7, timeoutMs: 1234, producer: 'cfg-reader' })
      const dead = got.find((m) => m.topic === 'ops/dead/thumbnail')
      expect(dead?.body).toMatchObject({ reason: 'validation', issues: [{ keyword: 'maxBytes' }] })
    } finally {
      await client.endAsync()
      await broker.close()
    }
  })
})
