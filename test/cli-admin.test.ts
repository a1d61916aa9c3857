import { once } from 'node:events'
import { join } from 'node:path'
import { createServer, type AddressInfo } from 'node:net'
import mqtt, { type MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import type { BrokerOptions } from '../broker/index.js'
import type { DeadLetterView, StatusView } from '../broker/admin/admin-api.js'
import { formatBytes, formatDuration, formatTable, formatWhen, truncate } from '../broker/cli/table.js'
import { buildEnvelope } from '../protocol/envelope.js'
import { runCli, startCliBroker, userLines } from './helpers/cli-process.js'
import { connectCollecting } from './helpers/connect.js'
import { writeUsers } from './helpers/security-fixtures.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { tempRoot } from './helpers/temp-root.js'
import { waitUntil } from './helpers/wait.js'

const temp = tempRoot('fleetq-cli-admin-')

// Every command spawns Node with tsx, which takes seconds on a loaded two-core machine.
const slow = { timeout: 120_000 }

const THUMBNAIL_GROUP = 'thumbnail/tasks/thumbnail'
const validThumbnail = { imageUrl: 'https://example.com/a.png', width: 64, height: 64 }

interface AdminBroker extends TestBroker {
  /** Base URL of its HTTP listener: what `--url` takes. */
  adminUrl: string
}

let running: AdminBroker | undefined
const clients: MqttClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
  await running?.close()
  running = undefined
})

/** A real broker with its HTTP listener on a free port, closed after the test. */
async function startAdminBroker (options: BrokerOptions = {}): Promise<AdminBroker> {
  const b = await startBroker({ dataDir: await temp.freshDir('data'), http: { port: 0 }, ...options })
  const http = b.broker.endpoints.find((e) => e.kind === 'http')
  if (http === undefined) {
    await b.close()
    throw new Error('the broker opened no HTTP listener')
  }
  running = Object.assign(b, { adminUrl: `http://127.0.0.1:${http.port}` })
  return running
}

async function mqttClient (url: string, clientId: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, { protocolVersion: 4, reconnectPeriod: 0, clientId })
  clients.push(client)
  return client
}

/** `fleetq <args> --url <adminUrl>`, expecting exit 0; resolves with stdout. */
async function fleetq (b: AdminBroker, args: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await runCli([...args, '--url', b.adminUrl], { env })
  expect(result.code, result.stderr).toBe(0)
  expect(result.stderr).toBe('')
  return result.stdout
}

/** `fleetq <args>` expecting a failure; resolves with its one stderr line. */
async function failing (args: string[], code: number, env: Record<string, string> = {}): Promise<string> {
  const result = await runCli(args, { env })
  expect(result.code, result.stderr).toBe(code)
  expect(result.stdout).toBe('')
  const lines = userLines(result.stderr)
  expect(lines, result.stderr).toHaveLength(1)
  return lines[0]!
}

/** The table row whose first column is `first`, split into its columns. */
function row (table: string, first: string): string[] {
  const line = table.split('\n').find((l) => l.split(/\s{2,}/)[0] === first)
  if (line === undefined) throw new Error(`no row "${first}" in:\n${table}`)
  return line.split(/\s{2,}/)
}

/** The header row's columns, to find a column by name. */
function column (table: string, header: string, cells: string[]): string {
  const headers = table.split('\n')[0]!.split(/\s{2,}/)
  const at = headers.indexOf(header)
  if (at < 0) throw new Error(`no column ${header} in:\n${table}`)
  return cells[at]!
}

describe('table output: aligned columns, human units', () => {
  it('aligns columns, numbers to the right, with no trailing blanks', () => {
    const table = formatTable([{ header: 'NAME' }, { header: 'DEPTH', align: 'right' }, { header: 'NOTE' }],
      [['a', '7', ''], ['longer-name', '1234', 'x']])
    expect(table.split('\n')).toEqual([
      'NAME         DEPTH  NOTE',
      'a                7',
      'longer-name   1234  x'
    ])
  })

  it('durations in their two largest units, bytes in binary units, times relative to now', () => {
    expect([850, 42_000, 192_000, 180_000, 18_180_000, 187_200_000].map(formatDuration))
      .toEqual(['850ms', '42s', '3m 12s', '3m', '5h 3m', '2d 4h'])
    expect([512, 1229, 3.4 * 1024 * 1024, 2 * 1024 ** 3].map(formatBytes)).toEqual(['512 B', '1.2 KiB', '3.4 MiB', '2.0 GiB'])
    const now = Date.parse('2025-01-01T00:00:00Z')
    expect(formatWhen('2025-01-01T00:03:12Z', now)).toBe('in 3m 12s')
    expect(formatWhen('2024-12-31T23:59:18Z', now)).toBe('42s ago')
    expect(formatWhen(null, now)).toBe('-')
    expect(truncate('first line\nsecond line', 12)).toBe('first line …')
  })
})

describe('fleetq admin commands against a running broker', slow, () => {
  it('status: a table for people, the API\'s JSON with --json', async () => {
    const b = await startAdminBroker()
    await mqttClient(b.url, 'status-device')
    const httpPort = new URL(b.adminUrl).port

    const table = await fleetq(b, ['status'])
    expect(table).toMatch(/^version {2,}\d+\.\d+\.\d+/m)
    expect(table).toMatch(/^clients {2,}1$/m)
    expect(table).toContain(`http 127.0.0.1:${httpPort}`)
    expect(table).toMatch(/^memory {2,}rss \d+\.\d MiB, heap \d+\.\d MiB$/m)

    const json = JSON.parse(await fleetq(b, ['status', '--json'])) as StatusView
    expect(json.connectedClients).toBe(1)
    expect(json.listeners).toContainEqual({ kind: 'http', host: '127.0.0.1', port: Number(httpPort) })
    expect(json.id).toBe(b.broker.admin.status().id)
  })

  it('groups: the depth of a task queue; pause then shows it paused, and the broker holds it paused', async () => {
    const b = await startAdminBroker()
    const producer = await mqttClient(b.url, 'producer')
    for (let i = 0; i < 2; i++) await producer.publishAsync('tasks/thumbnail', JSON.stringify(validThumbnail), { qos: 1 })
    await waitUntil(() => b.broker.admin.group(THUMBNAIL_GROUP).depth === 2, 'two thumbnail tasks waiting')

    const table = await fleetq(b, ['groups'])
    const cells = row(table, THUMBNAIL_GROUP)
    expect(column(table, 'DEPTH', cells)).toBe('2')
    expect(column(table, 'STATE', cells)).toBe('active')

    expect(await fleetq(b, ['groups', 'pause', THUMBNAIL_GROUP])).toMatch(new RegExp(`^group ${THUMBNAIL_GROUP} paused`))
    expect(b.broker.admin.group(THUMBNAIL_GROUP).paused).toBe(true)
    const paused = await fleetq(b, ['groups'])
    expect(column(paused, 'STATE', row(paused, THUMBNAIL_GROUP))).toBe('paused')

    expect(await fleetq(b, ['groups', 'purge', THUMBNAIL_GROUP])).toBe(`purged 2 messages from group ${THUMBNAIL_GROUP}\n`)
    expect(b.broker.admin.group(THUMBNAIL_GROUP).depth).toBe(0)
  })

  it('an unknown group: exit 1, one line with the code', async () => {
    const b = await startAdminBroker()
    const line = await failing(['groups', 'pause', 'nobody/tasks/nothing', '--url', b.adminUrl], 1)
    expect(line).toMatch(/^fleetq: .*nobody\/tasks\/nothing.* \(FLEETQ_GROUP_NOT_FOUND\)$/)
  })

  it('dead list: a task refused by its schema, with the reason', async () => {
    const b = await startAdminBroker()
    const device = await mqttClient(b.url, 'device-7')
    await device.publishAsync('tasks/thumbnail', JSON.stringify({ imageUrl: 'https://example.com/a.png', width: 64 }), { qos: 1 })
    await waitUntil(() => b.broker.admin.deadLetters(undefined, 100).length === 1, 'one dead letter stored')
    const [stored] = b.broker.admin.deadLetters(undefined, 100)

    const table = await fleetq(b, ['dead', 'list'])
    const cells = row(table, stored!.id)
    expect(column(table, 'TYPE', cells)).toBe('thumbnail')
    expect(column(table, 'REASON', cells)).toBe('validation')
    expect(column(table, 'ERROR', cells)).toContain('height')

    const json = JSON.parse(await fleetq(b, ['dead', 'list', '--type', 'thumbnail', '--limit', '10', '--json'])) as DeadLetterView[]
    expect(json.map((d) => d.id)).toEqual([stored!.id])
    expect(await fleetq(b, ['dead', 'list', '--type', 'device-report'])).toBe('no dead letters\n')
  })

  it('dead requeue <id>: the task goes back to its group and a worker gets it as attempt 1', async () => {
    const b = await startAdminBroker()
    // What a worker publishes when a task fails for good (client/task-runner.ts).
    const envelope = buildEnvelope({ type: 'thumbnail', payload: validThumbnail, maxAttempts: 1 })
    const worker = await mqttClient(b.url, 'failing-worker')
    await worker.publishAsync('$fleetq/dead/thumbnail', JSON.stringify({
      reason: 'failed', taskType: 'thumbnail', error: 'disk full', attempts: 1, envelope, at: new Date().toISOString()
    }), { qos: 1 })
    await waitUntil(() => b.broker.admin.deadLetters(undefined, 100).length === 1, 'the dead letter stored')
    const [stored] = b.broker.admin.deadLetters(undefined, 100)
    expect(row(await fleetq(b, ['dead', 'list']), stored!.id)).toContain('disk full')

    const thumbnailer = await connectCollecting(b.url, { clientId: 'thumbnailer' })
    clients.push(thumbnailer.client)
    await thumbnailer.client.subscribeAsync('$share/thumbnail/tasks/thumbnail', { qos: 1 })
    const received = thumbnailer.received

    expect(await fleetq(b, ['dead', 'requeue', stored!.id])).toBe('requeued 1 dead letter\n')
    await waitUntil(() => received.length === 1, 'the requeued task at a worker')
    expect(JSON.parse(received[0]!.payload)).toMatchObject({ type: 'thumbnail', attempt: 1, payload: validThumbnail })
  })

  it('dead requeue needs exactly one of ids, --type and --all: a usage error, exit 2, nothing sent', async () => {
    const line = await failing(['dead', 'requeue', '--url', 'http://127.0.0.1:9'], 2)
    expect(line).toBe('fleetq: dead requeue takes ids, --type <type> or --all (exactly one of them)')
    expect(await failing(['dead', 'requeue', 'abc', '--all', '--url', 'http://127.0.0.1:9'], 2)).toBe(line)
  })

  it('schedules: listed with their next run; pause is what the broker holds', async () => {
    const b = await startAdminBroker({ schedules: [{ name: 'nightly', cron: '0 3 * * *', topic: 'reports/nightly', payload: 'go' }] })

    const table = await fleetq(b, ['schedules'])
    const cells = row(table, 'nightly')
    expect(column(table, 'STATE', cells)).toBe('active')
    expect(column(table, 'CRON', cells)).toBe('0 3 * * *')
    expect(column(table, 'TARGET', cells)).toBe('topic reports/nightly')
    expect(column(table, 'NEXT', cells)).toMatch(/^in /)

    expect(await fleetq(b, ['schedules', 'pause', 'nightly'])).toBe('schedule nightly paused\n')
    expect(b.broker.admin.schedule('nightly').paused).toBe(true)
    const line = await failing(['schedules', 'resume', 'weekly', '--url', b.adminUrl], 1)
    expect(line).toMatch(/^fleetq: .*weekly.* \(FLEETQ_SCHEDULE_NOT_FOUND\)$/)
  })

  it('tasks submit: accepted through the task gate, or refused with the schema\'s reason', async () => {
    const b = await startAdminBroker()
    const out = await fleetq(b, ['tasks', 'submit', 'thumbnail', JSON.stringify(validThumbnail), '--max-attempts', '2'])
    expect(out).toMatch(/^submitted thumbnail task \S+ to tasks\/thumbnail\n$/)
    await waitUntil(() => b.broker.admin.group(THUMBNAIL_GROUP).depth === 1, 'the submitted task waiting')

    const refused = await failing(['tasks', 'submit', 'thumbnail', '{"width":64}', '--url', b.adminUrl], 1)
    expect(refused).toMatch(/^fleetq: .*height.* \(FLEETQ_(REQUEST|PAYLOAD)_INVALID\)$/)
    expect(await failing(['tasks', 'submit', 'thumbnail', '{width', '--url', b.adminUrl], 2)).toMatch(/^fleetq: the payload is not JSON/)
  })

  it('log-level: shows it, and sets it on the running broker', async () => {
    const b = await startAdminBroker()
    expect(await fleetq(b, ['log-level'])).toBe(`${b.broker.admin.logLevel()}\n`)
    // Not below warn: the broker's info lines would land in the test output.
    expect(await fleetq(b, ['log-level', 'error'])).toBe('error\n')
    expect(b.broker.admin.logLevel()).toBe('error')
    expect(await failing(['log-level', 'loud', '--url', b.adminUrl], 1)).toMatch(/\(FLEETQ_REQUEST_INVALID\)$/)
  })

  it('an unreachable URL: one line naming it, suggesting --url', async () => {
    // A port that was free a moment ago: nothing listens on it.
    const server = createServer().listen(0, '127.0.0.1')
    await once(server, 'listening')
    const { port } = server.address() as AddressInfo
    await new Promise<void>((resolve) => server.close(() => resolve()))

    const line = await failing(['status', '--url', `http://127.0.0.1:${port}`], 1)
    expect(line).toContain(`cannot reach the admin API at http://127.0.0.1:${port} (ECONNREFUSED)`)
    expect(line).toContain('--url')
  })
})

describe('fleetq admin commands against a broker with a users file', slow, () => {
  it('refuses without credentials; --user with FLEETQ_ADMIN_PASSWORD works, and a read-only user may not change things', async () => {
    const usersFile = await writeUsers(join(await temp.freshDir('auth'), 'users'), { ops: 'ops-secret', viewer: 'viewer-secret' })
    const b = await startAdminBroker({ auth: { usersFile, admins: ['ops'] } })

    const anonymous = await failing(['status', '--url', b.adminUrl], 1)
    expect(anonymous).toMatch(/^fleetq: .* \(FLEETQ_UNAUTHENTICATED\)$/)
    const wrong = await failing(['status', '--url', b.adminUrl, '--user', 'ops'], 1, { FLEETQ_ADMIN_PASSWORD: 'nope' })
    expect(wrong).toMatch(/\(FLEETQ_UNAUTHENTICATED\)$/)

    expect(await fleetq(b, ['log-level', 'warn', '--user', 'ops'], { FLEETQ_ADMIN_PASSWORD: 'ops-secret' })).toBe('warn\n')
    expect(b.broker.admin.logLevel()).toBe('warn')
    // The user can come from the environment too.
    const env = { FLEETQ_ADMIN_USER: 'viewer', FLEETQ_ADMIN_PASSWORD: 'viewer-secret' }
    expect(await fleetq(b, ['log-level'], env)).toBe('warn\n')
    expect(await failing(['log-level', 'debug', '--url', b.adminUrl], 1, env)).toMatch(/\(FLEETQ_FORBIDDEN\)$/)
  })

  it('--user without a password and without a terminal: a usage error, not a hang', async () => {
    const line = await failing(['status', '--user', 'ops', '--url', 'http://127.0.0.1:9'], 2)
    expect(line).toBe('fleetq: --user ops needs FLEETQ_ADMIN_PASSWORD when stdin is not a terminal')
  })
})

describe('fleetq broker opens the HTTP listener by default', slow, () => {
  it('logs it in "broker listening" and answers /healthz', async () => {
    // cli-process sets FLEETQ_HTTP_PORT=0: the default 8080 would collide between test runs.
    const broker = await startCliBroker(['--port', '0', '--persistence', 'memory'])
    try {
      const listeners = broker.listening['listeners'] as Array<{ kind: string, host: string, port: number }>
      const http = listeners.find((l) => l.kind === 'http')
      expect(http).toMatchObject({ host: '127.0.0.1' })
      const response = await fetch(`http://127.0.0.1:${http!.port}/healthz`)
      expect(response.status).toBe(200)
    } finally {
      await broker.kill()
    }
  })

  it('--http false opens none, whatever the port says', async () => {
    const broker = await startCliBroker(['--port', '0', '--persistence', 'memory', '--http', 'false'])
    try {
      const listeners = (broker.listening['listeners'] ?? []) as Array<{ kind: string }>
      expect(listeners.filter((l) => l.kind === 'http')).toEqual([])
    } finally {
      await broker.kill()
    }
  })
})
