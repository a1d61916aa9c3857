import { get } from 'node:http'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { connect, createWorker, UnrecoverableError, type Client, type Worker } from '../client/index.js'
import type { AdminApi, GroupView } from '../broker/admin/admin-api.js'
import { apiRoutes } from '../broker/http/api-routes.js'
import { EventStreams } from '../broker/http/events.js'
import { toProblem } from '../broker/http/problem.js'
import { inlineScriptHashes } from '../broker/http/static-files.js'
import { createAjv } from '../protocol/ajv.js'
import { ErrorCodes } from '../protocol/errors.js'
import { call, EventReader, httpBase, type Json } from './helpers/admin-http.js'
import { Clients, waitForEvent, waitForMessages } from './helpers/mqtt-helpers.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { testSchemas } from './helpers/task-schemas.js'
import { waitUntil } from './helpers/wait.js'

/*
 * The admin API over real HTTP (docs/operations.md) on an open broker (no
 * users file: every request is admin; access is test/http-auth.test.ts):
 * each route against real MQTT clients and workers, and problem+json for
 * every kind of bad request.
 */

const brokers: TestBroker[] = []
const clients = new Clients()
const fleet: Client[] = []
const workers: Worker[] = []
const readers: EventReader[] = []

afterEach(async () => {
  await Promise.all(readers.splice(0).map((r) => r.close()))
  await Promise.all(workers.splice(0).map((w) => w.close({ timeoutMs: 500 })))
  await Promise.all(fleet.splice(0).map((c) => c.close()))
  await clients.closeAll()
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})

async function start (): Promise<{ b: TestBroker, base: string }> {
  const b = await startBroker({ http: { port: 0 } })
  brokers.push(b)
  return { b, base: httpBase(b.broker) }
}

async function fleetClient (b: TestBroker): Promise<Client> {
  const c = await connect(b.url, { schemas: await testSchemas(), reconnectPeriod: 100 })
  fleet.push(c)
  return c
}

const thumb = { imageUrl: 'https://example.com/a.png', width: 10, height: 10 }

function expectProblem (answer: { status: number, headers: Headers, body: Json }, status: number, code: string): void {
  expect(answer.status).toBe(status)
  expect(answer.headers.get('content-type')).toBe('application/problem+json')
  expect(answer.body).toMatchObject({ status, code, type: `https://fleetq.dev/errors/${code}` })
  expect(typeof answer.body.detail).toBe('string')
}

describe('admin API: broker, clients, retained', () => {
  it('status, clients and subscriptions show a connected client; DELETE disconnects it', async () => {
    const { b, base } = await start()
    const device = await clients.connect(b.url, { clientId: 'device-1' })
    await device.client.subscribeAsync('sensors/+/temp', { qos: 1 })

    const status = await call(base, 'GET', '/api/status')
    expect(status.status).toBe(200)
    expect(status.headers.get('content-type')).toMatch(/^application\/json/)
    expect(status.body).toMatchObject({ connectedClients: 1, logLevel: 'silent' })
    expect(status.body.listeners.map((l: { kind: string }) => l.kind)).toContain('http')

    const list = await call(base, 'GET', '/api/clients')
    expect(list.body.map((c: { clientId: string }) => c.clientId)).toEqual(['device-1'])
    const one = await call(base, 'GET', '/api/clients/device-1')
    expect(one.body).toMatchObject({ clientId: 'device-1', subscriptions: [{ clientId: 'device-1', topic: 'sensors/+/temp', qos: 1 }] })
    const subscriptions = await call(base, 'GET', '/api/subscriptions')
    expect(subscriptions.body).toContainEqual({ clientId: 'device-1', topic: 'sensors/+/temp', qos: 1 })

    const closed = waitForEvent(device.client, 'close')
    expect((await call(base, 'DELETE', '/api/clients/device-1')).status).toBe(204)
    await closed
    expectProblem(await call(base, 'GET', '/api/clients/device-1'), 404, ErrorCodes.CLIENT_NOT_FOUND)
    expectProblem(await call(base, 'DELETE', '/api/clients/nobody'), 404, ErrorCodes.CLIENT_NOT_FOUND)
  })

  it('decodes path parameters: a client id with a slash and a space', async () => {
    const { b, base } = await start()
    await clients.connect(b.url, { clientId: 'site a/device 7' })
    const one = await call(base, 'GET', `/api/clients/${encodeURIComponent('site a/device 7')}`)
    expect(one.status).toBe(200)
    expect(one.body.clientId).toBe('site a/device 7')
  })

  it('lists retained messages by filter, and clears one', async () => {
    const { b, base } = await start()
    const pub = await clients.connect(b.url)
    await pub.client.publishAsync('rooms/kitchen/temp', '21.5', { qos: 1, retain: true })
    await pub.client.publishAsync('rooms/hall/temp', '19', { qos: 1, retain: true })
    const listed = await call(base, 'GET', `/api/retained?filter=${encodeURIComponent('rooms/+/temp')}&limit=10`)
    expect(listed.status).toBe(200)
    expect(listed.body.map((r: { topic: string }) => r.topic)).toEqual(['rooms/hall/temp', 'rooms/kitchen/temp'])
    expect(listed.body[1]).toMatchObject({ payload: '21.5', qos: 1, bytes: 4 })
    expect((await call(base, 'GET', '/api/retained?limit=1')).body).toHaveLength(1)

    expect((await call(base, 'DELETE', `/api/retained?topic=${encodeURIComponent('rooms/hall/temp')}`)).status).toBe(204)
    expect((await call(base, 'GET', '/api/retained?filter=rooms/%23')).body.map((r: { topic: string }) => r.topic)).toEqual(['rooms/kitchen/temp'])
    expectProblem(await call(base, 'DELETE', '/api/retained?topic=nothing/here'), 404, ErrorCodes.RETAINED_NOT_FOUND)

    const missing = await call(base, 'DELETE', '/api/retained')
    expectProblem(missing, 400, ErrorCodes.REQUEST_INVALID)
    expect(missing.body.issues).toContainEqual(expect.objectContaining({ path: '/topic', keyword: 'required' }))
    const tooMany = await call(base, 'GET', '/api/retained?limit=5000')
    expectProblem(tooMany, 400, ErrorCodes.REQUEST_INVALID)
    expect(tooMany.body.issues).toContainEqual(expect.objectContaining({ path: '/limit', keyword: 'maximum' }))
  })

  it('reads and sets the log level', async () => {
    const { base } = await start()
    expect((await call(base, 'GET', '/api/log-level')).body).toEqual({ level: 'silent' })
    expect((await call(base, 'PUT', '/api/log-level', { json: { level: 'error' } })).body).toEqual({ level: 'error' })
    expect((await call(base, 'GET', '/api/status')).body.logLevel).toBe('error')
  })
})

describe('admin API: groups and tasks', () => {
  it('submits a task that a shared subscriber receives; refuses unknown types and bad payloads', async () => {
    const { b, base } = await start()
    const sub = await clients.connect(b.url)
    await sub.client.subscribeAsync('$share/g/tasks/thumbnail', { qos: 1 })
    const submitted = await call(base, 'POST', '/api/tasks/thumbnail', { json: { payload: thumb, maxAttempts: 2, idempotencyKey: 'k-1' } })
    expect(submitted.status).toBe(202)
    expect(submitted.body).toMatchObject({ type: 'thumbnail', topic: 'tasks/thumbnail' })
    const [message] = await waitForMessages(sub.messages, 1, 'the submitted task')
    const envelope = JSON.parse(message!.payload) as { id: string, payload: unknown, maxAttempts: number }
    expect(envelope).toMatchObject({ id: submitted.body.id, payload: thumb, maxAttempts: 2 })

    expectProblem(await call(base, 'POST', '/api/tasks/no-such-type', { json: { payload: {} } }), 404, ErrorCodes.UNKNOWN_TASK_TYPE)
    const bad = await call(base, 'POST', '/api/tasks/thumbnail', { json: { payload: { width: 'wide' } } })
    expect(bad.status).toBe(400)
    expect(bad.body.issues.length).toBeGreaterThan(0)
    const noPayload = await call(base, 'POST', '/api/tasks/thumbnail', { json: { maxAttempts: 0 } })
    expectProblem(noPayload, 400, ErrorCodes.REQUEST_INVALID)
    expect(noPayload.body.issues).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: '/payload', keyword: 'required' }),
      expect.objectContaining({ path: '/maxAttempts', keyword: 'minimum' })
    ]))
  })

  it('lists groups; pauses, resumes and purges one by its URL-encoded key', async () => {
    const { b, base } = await start()
    const producer = await clients.connect(b.url)
    for (let i = 0; i < 3; i++) await producer.client.publishAsync('tasks/thumbnail', JSON.stringify(thumb), { qos: 1 })
    // The PUBACK can come before the task gate's copy reaches the group.
    await waitUntil(() => b.broker.stats().sharedGroups.find((g) => g.group === 'thumbnail')?.depth === 3, 'three tasks waiting')
    const groups = (await call(base, 'GET', '/api/groups')).body as GroupView[]
    const group = groups.find((g) => g.group === 'thumbnail')
    expect(group).toMatchObject({ depth: 3, paused: false })
    const path = `/api/groups/${encodeURIComponent(group!.key)}`
    expect((await call(base, 'GET', path)).body).toMatchObject({ key: group!.key, depth: 3 })
    expect((await call(base, 'POST', `${path}/pause`)).body).toMatchObject({ paused: true })
    expect((await call(base, 'POST', `${path}/resume`)).body).toMatchObject({ paused: false })
    expect((await call(base, 'POST', `${path}/purge`)).body).toEqual({ purged: 3 })
    expect((await call(base, 'GET', path)).body.depth).toBe(0)
    expectProblem(await call(base, 'GET', '/api/groups/no-such-group'), 404, ErrorCodes.GROUP_NOT_FOUND)
    expectProblem(await call(base, 'POST', '/api/groups/no-such-group/pause'), 404, ErrorCodes.GROUP_NOT_FOUND)
  })
})

describe('admin API: dead letters and schedules', () => {
  it('lists a worker\'s dead letter; requeued over HTTP, a worker completes it', async () => {
    const { b, base } = await start()
    const failing = await createWorker(await fleetClient(b), 'thumbnail', () => { throw new UnrecoverableError('bad image') })
    workers.push(failing)
    const deadLettered = waitForEvent(failing, 'dead-lettered')
    const producer = await fleetClient(b)
    await producer.submit('thumbnail', thumb)
    await deadLettered
    await failing.close()

    await waitUntil(() => b.broker.admin.deadLetters(undefined, 10).length === 1, 'the dead letter to be stored')
    const list = await call(base, 'GET', '/api/dead-letters?type=thumbnail')
    expect(list.status).toBe(200)
    expect(list.body).toHaveLength(1)
    const dead = list.body[0]
    expect(dead).toMatchObject({ taskType: 'thumbnail', reason: 'unrecoverable', error: 'bad image' })
    expect((await call(base, 'GET', `/api/dead-letters/${encodeURIComponent(dead.id)}`)).body.id).toBe(dead.id)
    expect((await call(base, 'GET', '/api/dead-letters?type=device-report')).body).toEqual([])

    const done: unknown[] = []
    const healthy = await createWorker(await fleetClient(b), 'thumbnail', (p) => p.width)
    workers.push(healthy)
    healthy.on('completed', (e) => done.push(e.result))
    const requeued = await call(base, 'POST', `/api/dead-letters/${encodeURIComponent(dead.id)}/requeue`)
    expect(requeued.status).toBe(200)
    expect(requeued.body).toEqual({ requeued: 1, skipped: [] })
    await waitUntil(() => done.length === 1, 'the requeued task to complete')
    expect(done).toEqual([10])

    expectProblem(await call(base, 'GET', '/api/dead-letters/nope'), 404, ErrorCodes.DEAD_LETTER_NOT_FOUND)
    expectProblem(await call(base, 'POST', '/api/dead-letters/nope/requeue'), 404, ErrorCodes.DEAD_LETTER_NOT_FOUND)
    expectProblem(await call(base, 'DELETE', '/api/dead-letters/nope'), 404, ErrorCodes.DEAD_LETTER_NOT_FOUND)
    const both = await call(base, 'POST', '/api/dead-letters/requeue', { json: { type: 'thumbnail', all: true } })
    expectProblem(both, 400, ErrorCodes.REQUEST_INVALID)
    expect(both.body.issues.length).toBeGreaterThan(0)
  })

  it('deletes a dead letter; requeues by type', async () => {
    const { b, base } = await start()
    const dead = await clients.connect(b.url)
    await dead.client.subscribeAsync('$fleetq/dead/thumbnail', { qos: 1 })
    const producer = await clients.connect(b.url)
    // Refused by the task gate: dead-lettered by the broker, with the submission kept.
    await producer.client.publishAsync('tasks/thumbnail', '{"width":"wide"}', { qos: 1 })
    await producer.client.publishAsync('tasks/thumbnail', '{"width":"narrow"}', { qos: 1 })
    await waitForMessages(dead.messages, 2, 'the dead letters')
    await waitUntil(() => b.broker.admin.deadLetters(undefined, 10).length === 2, 'both dead letters to be stored')
    const [first] = (await call(base, 'GET', '/api/dead-letters')).body as Array<{ id: string }>
    expect((await call(base, 'DELETE', `/api/dead-letters/${encodeURIComponent(first!.id)}`)).status).toBe(204)
    expect((await call(base, 'GET', '/api/dead-letters')).body).toHaveLength(1)
    const byType = await call(base, 'POST', '/api/dead-letters/requeue', { json: { type: 'thumbnail' } })
    expect(byType.status).toBe(200)
    expect(byType.body.requeued + byType.body.skipped.length).toBe(1)
  })

  it('creates, pauses, resumes, triggers and removes a schedule', async () => {
    const { b, base } = await start()
    const sub = await clients.connect(b.url)
    await sub.client.subscribeAsync('reports/nightly', { qos: 1 })
    const put = await call(base, 'PUT', '/api/schedules/nightly', { json: { cron: '0 3 * * *', topic: 'reports/nightly', payload: 'go' } })
    expect(put.status).toBe(200)
    expect(put.body).toMatchObject({ name: 'nightly', cron: '0 3 * * *', source: 'api', paused: false })
    expect((await call(base, 'GET', '/api/schedules')).body.map((s: { name: string }) => s.name)).toContain('nightly')
    expect((await call(base, 'POST', '/api/schedules/nightly/pause')).body.paused).toBe(true)
    expect((await call(base, 'GET', '/api/schedules/nightly')).body.paused).toBe(true)
    expect((await call(base, 'POST', '/api/schedules/nightly/resume')).body.paused).toBe(false)
    expect((await call(base, 'POST', '/api/schedules/nightly/trigger')).status).toBe(200)
    const [fired] = await waitForMessages(sub.messages, 1, 'the triggered publish')
    expect(fired!.payload).toBe('go')

    const renamed = await call(base, 'PUT', '/api/schedules/nightly', { json: { name: 'other', cron: '0 3 * * *', topic: 'x' } })
    expectProblem(renamed, 400, ErrorCodes.REQUEST_INVALID)
    expectProblem(await call(base, 'PUT', '/api/schedules/broken', { json: { cron: 'not a cron', topic: 'x' } }), 400, ErrorCodes.CRON_INVALID)
    const unknownKey = await call(base, 'PUT', '/api/schedules/typo', { json: { cron: '@daily', topic: 'x', color: 'red' } })
    expectProblem(unknownKey, 400, ErrorCodes.REQUEST_INVALID)
    expect(unknownKey.body.issues).toContainEqual(expect.objectContaining({ path: '/color', keyword: 'additionalProperties' }))

    expect((await call(base, 'DELETE', '/api/schedules/nightly')).status).toBe(204)
    expectProblem(await call(base, 'GET', '/api/schedules/nightly'), 404, ErrorCodes.SCHEDULE_NOT_FOUND)
  })
})

describe('admin API: bad requests answer problem+json', () => {
  it('unknown route 404, wrong method 405 with allow, bad JSON 400, bad percent-encoding 400, too large 413', async () => {
    const { base } = await start()
    const unknown = await call(base, 'GET', '/api/nothing')
    expectProblem(unknown, 404, ErrorCodes.NOT_FOUND)
    expect(unknown.body.instance).toBe('/api/nothing')
    const wrong = await call(base, 'PATCH', '/api/schedules/x')
    expectProblem(wrong, 405, ErrorCodes.METHOD_NOT_ALLOWED)
    expect(wrong.headers.get('allow')?.split(', ').sort()).toEqual(['DELETE', 'GET', 'HEAD', 'PUT'])
    const notJson = await call(base, 'PUT', '/api/log-level', { headers: { 'content-type': 'application/json' }, body: '{"level":' })
    expectProblem(notJson, 400, ErrorCodes.REQUEST_INVALID)
    const invalid = await call(base, 'PUT', '/api/log-level', { json: { level: 'loud' } })
    expectProblem(invalid, 400, ErrorCodes.REQUEST_INVALID)
    expect(invalid.body.issues).toContainEqual(expect.objectContaining({ path: '/level', keyword: 'enum' }))
    expectProblem(await call(base, 'GET', '/api/clients/%E0%A4%A'), 400, ErrorCodes.REQUEST_INVALID)
    const huge = await call(base, 'PUT', '/api/log-level', { json: { level: 'info', pad: 'x'.repeat(1024 * 1024) } })
    expectProblem(huge, 413, ErrorCodes.REQUEST_INVALID)
    // The server is still there.
    expect((await call(base, 'GET', '/healthz')).status).toBe(200)
  })

  it('an unexpected error is a 500 that tells nothing of the server\'s insides', () => {
    const { problem } = toProblem(new Error('ENOENT: /srv/secret/path'), '/api/status')
    expect(problem).toEqual({ type: 'about:blank', title: 'Internal Server Error', status: 500, detail: 'internal error', instance: '/api/status' })
  })

  it('an empty body is {} for routes that take none', async () => {
    const { b, base } = await start()
    await clients.connect(b.url, { clientId: 'gone-soon' })
    const res = await fetch(`${base}/api/clients/gone-soon`, { method: 'DELETE', headers: { 'content-type': 'application/json' } })
    expect(res.status).toBe(204)
  })
})

describe('server-sent events', () => {
  it('sends a snapshot at once and then every interval, with a group\'s depth as it changes', async () => {
    const { b, base } = await start()
    const reader = new EventReader(`${base}/api/events?intervalMs=200`)
    readers.push(reader)
    const res = await reader.response
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    expect(res.headers.get('cache-control')).toBe('no-cache')
    await waitUntil(() => reader.events.length >= 1, 'the first snapshot')
    const first = reader.events[0]!
    expect(first.event).toBe('snapshot')
    expect(Object.keys(first.data).sort()).toEqual(['deadLetters', 'groups', 'schedules', 'status'])
    const depth = (data: Json): number | undefined => data.groups.find((g: GroupView) => g.group === 'thumbnail')?.depth
    expect(depth(first.data)).toBe(0)

    const producer = await clients.connect(b.url)
    await producer.client.publishAsync('tasks/thumbnail', JSON.stringify(thumb), { qos: 1 })
    await producer.client.publishAsync('tasks/thumbnail', JSON.stringify(thumb), { qos: 1 })
    await waitUntil(() => depth(reader.events.at(-1)!.data) === 2, 'a snapshot with both tasks waiting')
  })

  it('refuses an interval out of range', async () => {
    const { base } = await start()
    const answer = await call(base, 'GET', '/api/events?intervalMs=10')
    expectProblem(answer, 400, ErrorCodes.REQUEST_INVALID)
  })

  it('ends open streams when the broker closes, without holding the close up', async () => {
    const { b, base } = await start()
    const reader = new EventReader(`${base}/api/events`)
    readers.push(reader)
    await waitUntil(() => reader.events.length >= 1, 'the first snapshot')
    await b.close()
    await reader.done
  })
})

describe('OpenAPI document', () => {
  const contract = [
    'GET /api/whoami', 'GET /api/status', 'GET /api/events', 'GET /api/clients', 'GET /api/clients/{clientId}', 'DELETE /api/clients/{clientId}',
    'GET /api/subscriptions', 'GET /api/retained', 'DELETE /api/retained', 'GET /api/groups', 'GET /api/groups/{key}',
    'POST /api/groups/{key}/pause', 'POST /api/groups/{key}/resume', 'POST /api/groups/{key}/purge', 'DELETE /api/groups/{key}',
    'GET /api/dead-letters', 'GET /api/dead-letters/{id}', 'POST /api/dead-letters/requeue', 'POST /api/dead-letters/{id}/requeue',
    'DELETE /api/dead-letters/{id}', 'GET /api/schedules', 'GET /api/schedules/{name}', 'PUT /api/schedules/{name}',
    'POST /api/schedules/{name}/pause', 'POST /api/schedules/{name}/resume', 'POST /api/schedules/{name}/trigger',
    'DELETE /api/schedules/{name}', 'POST /api/tasks/{type}', 'GET /api/log-level', 'PUT /api/log-level', 'GET /api/openapi.json',
    'GET /metrics', 'GET /healthz', 'GET /readyz'
  ]

  it('is OpenAPI 3.1 with every route of the table and of the contract, and valid schemas', async () => {
    const { base } = await start()
    const answer = await call(base, 'GET', '/api/openapi.json')
    expect(answer.status).toBe(200)
    const doc = answer.body
    expect(doc.openapi).toBe('3.1.0')
    expect(Object.keys(doc.components.securitySchemes).sort()).toEqual(['basic', 'bearer'])
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`))
    const table = apiRoutes({} as AdminApi, new EventStreams(pino({ level: 'silent' }))).map((r) => `${r.method} ${r.path}`)
    for (const route of [...table, ...contract]) expect(documented).toContain(route)
    // Every schema in it compiles.
    const ajv = createAjv({ strict: false })
    for (const item of Object.values(doc.paths as Record<string, Record<string, Json>>)) {
      for (const op of Object.values(item)) {
        for (const p of op.parameters ?? []) ajv.compile(p.schema)
        for (const media of Object.values(op.requestBody?.content ?? {}) as Json[]) ajv.compile(media.schema)
        for (const response of Object.values(op.responses) as Json[]) {
          for (const media of Object.values(response.content ?? {}) as Json[]) if (media.schema !== undefined) ajv.compile(media.schema)
        }
      }
    }
    ajv.compile(doc.components.schemas.Problem)
  })
})

describe('dashboard files', () => {
  it('serves index.html with a CSP allowing its import map by hash, assets and vendor modules', async () => {
    const { base } = await start()
    const index = await fetch(`${base}/`)
    expect(index.status).toBe(200)
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(index.headers.get('cache-control')).toBe('no-cache')
    const html = await index.text()
    const csp = index.headers.get('content-security-policy') ?? ''
    for (const hash of inlineScriptHashes(html)) expect(csp).toContain(`'${hash}'`)
    expect(csp).not.toContain('unsafe-inline')
    expect((await fetch(`${base}/index.html`)).status).toBe(200)

    const app = await fetch(`${base}/assets/app.js`)
    expect(app.status).toBe(200)
    expect(app.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(app.headers.get('cache-control')).toMatch(/max-age=\d+/)
    for (const name of ['preact.mjs', 'hooks.mjs', 'htm.mjs', 'uPlot.esm.js']) {
      const vendor = await fetch(`${base}/vendor/${name}`)
      expect(vendor.status).toBe(200)
      expect(vendor.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    }
    expect((await fetch(`${base}/vendor/uPlot.min.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8')
  })

  it('reaches no file outside dashboard/ and the vendor list', async () => {
    const { base } = await start()
    for (const path of ['/assets/..%2Fpackage.json', '/assets/%2e%2e%2fpackage.json', '/assets/.hidden', '/assets/..%5Cpackage.json',
      '/assets/nope.js', '/assets/app.ts', '/vendor/react.js', '/vendor/..%2F..%2Fpackage.json', '/vendor/constructor']) {
      const res = await fetch(`${base}${path}`)
      expect(res.status, path).toBe(404)
      await res.text()
    }
    // fetch resolves `..` before sending; node:http sends the path as written.
    for (const path of ['/assets/../package.json', '/assets/..', '/vendor/../../package.json']) {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        get({ host: '127.0.0.1', port: new URL(base).port, path }, (res) => { res.resume(); resolve(res.statusCode) }).on('error', reject)
      })
      expect(status, path).toBe(404)
    }
  })
})
