import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { pino } from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createBroker } from '../broker/index.js'
import { allowAll } from '../broker/mqtt/index.js'
import { hashPassword } from '../broker/security/password-hash.js'
import { Authenticator, isLoopback, withAuthentication } from '../broker/security/authenticator.js'
import { writeUsersFile, type UsersFileEntry } from '../broker/security/users-file.js'
import { ConfigError, ErrorCodes } from '../protocol/errors.js'
import { parseLog, runCli, startCliBroker, userLines, type LogLine } from './helpers/cli-process.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { waitUntil } from './helpers/wait.js'

/*
 * Authentication (docs/security.md): a users file of scrypt hashes, CONNACK
 * 0x04 for a wrong password or an unknown user and 0x05 for an anonymous
 * client when anonymous access is off (MQTT 3.1.1 §3.2.2.3), as a real
 * mqtt.js client sees them.
 */

let root: string
let n = 0
beforeAll(async () => { root = await mkdtemp(join(tmpdir(), 'fleetq-auth-')) })
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

/** A users file with these users and passwords, mode 0600. */
async function usersFile (users: Record<string, string>, path = join(root, `users-${n++}`)): Promise<string> {
  const entries: UsersFileEntry[] = []
  for (const [user, password] of Object.entries(users)) entries.push({ user, encoded: await hashPassword(password) })
  await writeUsersFile(path, entries)
  return path
}

/** A pino logger whose lines the test can read. */
function capturingLogger (): { logger: pino.Logger, lines: LogLine[] } {
  const lines: LogLine[] = []
  const logger = pino({ level: 'info' }, { write: (line: string) => { lines.push(JSON.parse(line) as LogLine) } })
  return { logger, lines }
}

const brokers: TestBroker[] = []
const clients: MqttClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})

async function start (options: Parameters<typeof startBroker>[0] = {}): Promise<TestBroker> {
  const broker = await startBroker(options)
  brokers.push(broker)
  return broker
}

/** Connects, or rejects with mqtt.js's error (its `code` is the CONNACK return code). */
async function connect (url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000, clientId: `auth-${n++}`, ...options })
  clients.push(client)
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => resolve())
    client.once('error', reject)
    client.once('close', () => reject(new Error('closed before CONNACK')))
  })
  return client
}

/** The CONNACK return code a refused CONNECT got. */
async function refusal (url: string, options: IClientOptions): Promise<number | undefined> {
  const err = await connect(url, options).then(() => { throw new Error('the CONNECT was accepted') }, (e: unknown) => e as { code?: number })
  return err.code
}

describe('authentication with a users file', () => {
  it('accepts the right password and refuses a wrong one, an unknown user and no password with 0x04', async () => {
    const file = await usersFile({ alice: 'correct horse', bob: 'battery staple' })
    const { logger, lines } = capturingLogger()
    const b = await start({ auth: { usersFile: file }, logger })

    const alice = await connect(b.url, { username: 'alice', password: 'correct horse' })
    expect(alice.connected).toBe(true)
    expect(await refusal(b.url, { username: 'alice', password: 'battery staple', clientId: 'wrong-pw' })).toBe(4)
    expect(await refusal(b.url, { username: 'mallory', password: 'correct horse', clientId: 'unknown-user' })).toBe(4)
    expect(await refusal(b.url, { username: 'bob', clientId: 'no-pw' })).toBe(4)

    expect(b.broker.stats().auth).toEqual({ accepted: 1, refused: 3 })
    // Each refusal logged once, with the client id and why; never a password.
    const refused = lines.filter((l) => l.msg === 'connection refused')
    expect(refused.map((l) => [l['clientId'], l['reason'], l['returnCode']])).toEqual([
      ['wrong-pw', 'wrong password', 4],
      ['unknown-user', 'unknown user', 4],
      ['no-pw', 'no password', 4]
    ])
    const all = JSON.stringify(lines)
    expect(all).not.toContain('correct horse')
    expect(all).not.toContain('battery staple')
    expect(lines.filter((l) => l.msg === 'users file loaded')).toMatchObject([{ users: 2 }])
    expect(lines.some((l) => /anyone can connect/.test(l.msg))).toBe(false)
  })

  it('refuses anonymous clients with 0x05 once a users file is set, unless allowAnonymous is true', async () => {
    const file = await usersFile({ alice: 'pw-a' })
    const closed = await start({ auth: { usersFile: file } })
    expect(await refusal(closed.url, {})).toBe(5)
    expect(closed.broker.stats().auth).toEqual({ accepted: 0, refused: 1 })

    const { logger, lines } = capturingLogger()
    const open = await start({ auth: { usersFile: file, allowAnonymous: true }, logger })
    expect((await connect(open.url)).connected).toBe(true)
    // A user name is still checked: a wrong password does not fall back to anonymous.
    expect(await refusal(open.url, { username: 'alice', password: 'nope' })).toBe(4)
    expect((await connect(open.url, { username: 'alice', password: 'pw-a' })).connected).toBe(true)
    expect(open.broker.stats().auth).toEqual({ accepted: 2, refused: 1 })
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(['anonymous clients are allowed besides the users of the users file'])
  })

  it('refuses every CONNECT when allowAnonymous is false and there is no users file', async () => {
    const b = await start({ auth: { allowAnonymous: false } })
    expect(await refusal(b.url, {})).toBe(5)
    expect(await refusal(b.url, { username: 'alice', password: 'pw' })).toBe(4)
  })

  it('tells later checks which user a connection is, also for a restored persistent session', async () => {
    const file = await usersFile({ alice: 'pw-a' })
    const auth = await Authenticator.create({ usersFile: file, allowAnonymous: true }, { logger: pino({ level: 'silent' }), hosts: ['127.0.0.1'] })
    const seen: Array<[string, string | undefined, string]> = []
    // The authenticator createBroker builds, with a spy for the checks after CONNECT.
    const b = await createBroker({ port: 0, logLevel: 'silent', dataDir: await mkdtemp(join(root, 'data-')) }, {
      access: withAuthentication(auth, {
        ...allowAll,
        authorizePublish: (client, topic) => { seen.push([client.id, client.username, `pub ${topic}`]); return true },
        authorizeSubscribe: (client, filter) => { seen.push([client.id, client.username, `sub ${filter}`]); return true }
      })
    })
    try {
      const url = `mqtt://127.0.0.1:${b.port}`
      const alice = await connect(url, { username: 'alice', password: 'pw-a', clientId: 'alice-1', clean: false })
      await alice.subscribeAsync('fleet/alice/#', { qos: 1 })
      await alice.publishAsync('fleet/alice/x', 'hi', { qos: 1 })
      await alice.endAsync()
      // Reconnecting restores the subscription, checked again on CONNECT.
      const again = await connect(url, { username: 'alice', password: 'pw-a', clientId: 'alice-1', clean: false })
      await again.endAsync()
      const anon = await connect(url, { clientId: 'anon-1' })
      await anon.publishAsync('open/x', 'hi', { qos: 1 })
      expect(seen).toEqual([
        ['alice-1', 'alice', 'sub fleet/alice/#'],
        ['alice-1', 'alice', 'pub fleet/alice/x'],
        ['alice-1', 'alice', 'sub fleet/alice/#'],
        ['anon-1', undefined, 'pub open/x']
      ])
    } finally {
      await b.close()
    }
  })

  it('reloads the users file: added and changed users take effect; a bad file keeps the previous users', async () => {
    const file = await usersFile({ alice: 'old-pw' })
    const { logger, lines } = capturingLogger()
    const b = await start({ auth: { usersFile: file }, logger })
    expect(await refusal(b.url, { username: 'carol', password: 'c-pw' })).toBe(4)

    await usersFile({ alice: 'new-pw', carol: 'c-pw' }, file)
    await b.broker.reloadAuth()
    expect((await connect(b.url, { username: 'carol', password: 'c-pw' })).connected).toBe(true)
    expect((await connect(b.url, { username: 'alice', password: 'new-pw' })).connected).toBe(true)
    expect(await refusal(b.url, { username: 'alice', password: 'old-pw' })).toBe(4)

    await writeFile(file, 'carol:not-a-hash\n')
    await expect(b.broker.reloadAuth()).rejects.toMatchObject({ code: ErrorCodes.CONFIG_INVALID, key: 'auth.usersFile' })
    expect(lines.filter((l) => l.level === 50).map((l) => l.msg)).toEqual(['users file not reloaded; the previous users stay'])
    expect((await connect(b.url, { username: 'alice', password: 'new-pw' })).connected).toBe(true)
    expect(lines.filter((l) => l.msg === 'users file loaded').map((l) => l['users'])).toEqual([1, 2])
  })

  it('refuses to start with a users file it cannot use, naming the file and line', async () => {
    const bad = join(root, `bad-${n++}`)
    await writeFile(bad, '# fleet users\nalice:$scrypt$N=16384,r=8,p=1$c2FsdHNhbHQ=$aGFzaA==\n')
    await expect(createBroker({ port: 0, logLevel: 'silent', persistence: 'memory', auth: { usersFile: bad } }))
      .rejects.toMatchObject({ key: 'auth.usersFile', message: expect.stringContaining(`${bad} line 2: the hash of "alice" is the hash must be 16 to 64 bytes`) as unknown })
    await expect(createBroker({ port: 0, logLevel: 'silent', persistence: 'memory', auth: { usersFile: join(root, 'missing') } }))
      .rejects.toMatchObject({ key: 'auth.usersFile', message: expect.stringContaining('no such file') as unknown })
  })

  it('warns when other users of the machine can read the users file', async () => {
    const file = await usersFile({ alice: 'pw' })
    await chmod(file, 0o644)
    const { logger, lines } = capturingLogger()
    await start({ auth: { usersFile: file }, logger })
    expect(lines.filter((l) => l.level === 40).map((l) => l.msg)).toEqual(['the users file can be read by other users of this machine; chmod 600 it'])
  })
})

describe('without a users file', () => {
  it('lets anyone in, as before, and says so once at start', async () => {
    const { logger, lines } = capturingLogger()
    const b = await start({ logger })
    expect((await connect(b.url)).connected).toBe(true)
    // A user name nothing can check is let in too, and not passed on as a verified user.
    expect((await connect(b.url, { username: 'whoever', password: 'anything' })).connected).toBe(true)
    expect(b.broker.stats().auth).toEqual({ accepted: 2, refused: 0 })
    expect(lines.filter((l) => l.level >= 40).map((l) => l.msg)).toEqual(['authentication is off: anyone can connect (set auth.usersFile, docs/security.md)'])
    await b.broker.reloadAuth() // nothing to read; not an error
  })

  it('refuses to listen beyond loopback unless allowAnonymous is true or a users file is set', async () => {
    const dataDir = await mkdtemp(join(root, 'data-'))
    const err = await createBroker({ port: 0, host: '0.0.0.0', logLevel: 'silent', dataDir }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).message).toBe('invalid config "auth.usersFile": is required to listen on 0.0.0.0 (beyond loopback); ' +
      'set it, or set auth.allowAnonymous (--allow-anonymous) to let anyone connect')
    // Refused before the store was opened: nothing was written.
    expect(await readdir(dataDir)).toEqual([])

    const open = await start({ host: '0.0.0.0', auth: { allowAnonymous: true } })
    expect((await connect(`mqtt://127.0.0.1:${open.port}`)).connected).toBe(true)
    const closed = await start({ host: '0.0.0.0', auth: { usersFile: await usersFile({ alice: 'pw' }) } })
    expect((await connect(`mqtt://127.0.0.1:${closed.port}`, { username: 'alice', password: 'pw' })).connected).toBe(true)
  })

  it('knows loopback from the network', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopback(host), host).toBe(true)
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'example.com', '128.0.0.1', '::ffff:10.0.0.1']) expect(isLoopback(host), host).toBe(false)
  })
})

// Each test spawns Node with tsx, which takes seconds on a loaded two-core machine.
describe('fleetq broker with authentication', { timeout: 120_000 }, () => {
  it('refuses --host 0.0.0.0 without a users file: one line, exit 2; --allow-anonymous starts it', async () => {
    const dataDir = await mkdtemp(join(root, 'data-'))
    const refused = await runCli(['broker', '--port', '0', '--host', '0.0.0.0', '--data-dir', dataDir])
    expect(refused.code).toBe(2)
    // Nothing but that line: no warning about an open broker that never started.
    expect(refused.stderr.trim().split('\n')).toHaveLength(1)
    expect(userLines(refused.stderr)).toEqual(['fleetq: invalid config "auth.usersFile": is required to listen on 0.0.0.0 (beyond loopback); ' +
      'set it, or set auth.allowAnonymous (--allow-anonymous) to let anyone connect (FLEETQ_CONFIG_INVALID)'])

    const open = await startCliBroker(['--port', '0', '--host', '0.0.0.0', '--data-dir', dataDir, '--allow-anonymous'])
    try {
      const warning = open.stderrLines.map(parseLog).filter((l) => l !== undefined && l.level === 40)
      expect(warning.map((l) => l?.msg)).toEqual(['authentication is off: anyone can connect (set auth.usersFile, docs/security.md)'])
      expect((await connect(`mqtt://127.0.0.1:${open.port}`)).connected).toBe(true)
    } finally {
      await open.kill('SIGKILL')
    }
  })

  it('reads the users file again on SIGHUP (FLEETQ_USERS_FILE); a broken file keeps the previous users', async () => {
    const file = await usersFile({ alice: 'pw-a' })
    const broker = await startCliBroker(['--port', '0', '--persistence', 'memory'], { env: { FLEETQ_USERS_FILE: file } })
    try {
      expect(await refusal(broker.url, {})).toBe(5)
      expect(await refusal(broker.url, { username: 'dave', password: 'pw-d' })).toBe(4)
      // fleetq passwd adds dave, then SIGHUP.
      const added = await runCli(['passwd', '-b', file, 'dave', 'pw-d'])
      expect(added.code).toBe(0)
      broker.child.kill('SIGHUP')
      await waitUntil(() => broker.stderrLines.filter((l) => parseLog(l)?.msg === 'users file loaded').length === 2, 'the reload')
      expect((await connect(broker.url, { username: 'dave', password: 'pw-d' })).connected).toBe(true)

      await writeFile(file, 'no colon here\n')
      broker.child.kill('SIGHUP')
      const failed = await broker.waitForLog('users file not reloaded; the previous users stay')
      expect(String((failed['err'] as { message: string }).message)).toContain('line 1: expected user:hash')
      expect((await connect(broker.url, { username: 'alice', password: 'pw-a' })).connected).toBe(true)
      // Still serving: SIGTERM closes it cleanly.
      expect(await broker.kill('SIGTERM')).toEqual({ code: 0, signal: null })
    } finally {
      await broker.kill('SIGKILL')
    }
  })
})
