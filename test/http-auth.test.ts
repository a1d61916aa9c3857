import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createBroker } from '../broker/index.js'
import { ConfigError, ErrorCodes } from '../protocol/errors.js'
import { basic, call, httpBase } from './helpers/admin-http.js'
import { writeUsers } from './helpers/security-fixtures.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { tempRoot } from './helpers/temp-root.js'

/*
 * Who may use the HTTP listener (docs/operations.md): with a users file,
 * Basic credentials give `admin` (auth.admins) or `read`, the bearer token
 * `read`; without one it is open, and only on loopback.
 */

const root = tempRoot('fleetq-http-auth-')
const brokers: TestBroker[] = []
afterEach(async () => { await Promise.all(brokers.splice(0).map((b) => b.close())) })

const TOKEN = 'scrape-token-0123456789'
const quiet = { 'x-requested-with': 'fleetq' }

async function secured (): Promise<{ b: TestBroker, base: string, usersFile: string }> {
  const usersFile = await writeUsers(join(await root.freshDir('users'), 'users'), { alice: 'alice-pw', bob: 'bob-pw' })
  const b = await startBroker({ http: { port: 0, token: TOKEN }, auth: { usersFile, admins: ['alice'] } })
  brokers.push(b)
  return { b, base: httpBase(b.broker), usersFile }
}

describe('HTTP access with a users file', () => {
  it('refuses a request without credentials: 401 problem+json, with a Basic challenge unless X-Requested-With: fleetq', async () => {
    const { base } = await secured()
    const bare = await call(base, 'GET', '/api/status')
    expect(bare.status).toBe(401)
    expect(bare.headers.get('content-type')).toBe('application/problem+json')
    expect(bare.headers.get('www-authenticate')).toMatch(/^Basic realm="fleetq"/)
    expect(bare.body).toMatchObject({ status: 401, code: ErrorCodes.UNAUTHENTICATED, instance: '/api/status', type: `https://fleetq.dev/errors/${ErrorCodes.UNAUTHENTICATED}` })
    const fromDashboard = await call(base, 'GET', '/api/status', { headers: quiet })
    expect(fromDashboard.status).toBe(401)
    expect(fromDashboard.headers.get('www-authenticate')).toBeNull()
    expect((await call(base, 'GET', '/metrics')).status).toBe(401)
  })

  it('refuses a wrong password, an unknown user and a wrong token', async () => {
    const { base } = await secured()
    expect((await call(base, 'GET', '/api/whoami', { headers: basic('alice', 'nope') })).status).toBe(401)
    expect((await call(base, 'GET', '/api/whoami', { headers: basic('mallory', 'alice-pw') })).status).toBe(401)
    expect((await call(base, 'GET', '/api/whoami', { headers: { authorization: `Bearer ${TOKEN}x` } })).status).toBe(401)
    expect((await call(base, 'GET', '/api/whoami', { headers: { authorization: 'Basic !!!' } })).status).toBe(401)
  })

  it('lets a user who is not an admin read, and answers 403 to anything else', async () => {
    const { base } = await secured()
    const bob = basic('bob', 'bob-pw')
    expect((await call(base, 'GET', '/api/whoami', { headers: bob })).body).toEqual({ user: 'bob', role: 'read' })
    expect((await call(base, 'GET', '/api/status', { headers: bob })).status).toBe(200)
    expect((await call(base, 'GET', '/metrics', { headers: bob })).status).toBe(200)
    const put = await call(base, 'PUT', '/api/log-level', { headers: bob, json: { level: 'debug' } })
    expect(put.status).toBe(403)
    expect(put.body.code).toBe(ErrorCodes.FORBIDDEN)
    expect((await call(base, 'DELETE', '/api/clients/someone', { headers: bob })).status).toBe(403)
    expect((await call(base, 'POST', '/api/dead-letters/requeue', { headers: bob, json: { all: true } })).status).toBe(403)
  })

  it('lets a user of auth.admins change things', async () => {
    const { base } = await secured()
    const alice = basic('alice', 'alice-pw')
    expect((await call(base, 'GET', '/api/whoami', { headers: alice })).body).toEqual({ user: 'alice', role: 'admin' })
    const put = await call(base, 'PUT', '/api/log-level', { headers: alice, json: { level: 'warn' } })
    expect(put.status).toBe(200)
    expect(put.body).toEqual({ level: 'warn' })
    expect((await call(base, 'GET', '/api/log-level', { headers: alice })).body).toEqual({ level: 'warn' })
  })

  it('lets the bearer token read /metrics and the API, and nothing more', async () => {
    const { base } = await secured()
    const bearer = { authorization: `Bearer ${TOKEN}` }
    const metrics = await call(base, 'GET', '/metrics', { headers: bearer })
    expect(metrics.status).toBe(200)
    expect(metrics.body).toContain('fleetq_connected_clients')
    expect((await call(base, 'GET', '/api/status', { headers: bearer })).status).toBe(200)
    expect((await call(base, 'GET', '/api/whoami', { headers: bearer })).body).toEqual({ user: null, role: 'read' })
    const put = await call(base, 'PUT', '/api/log-level', { headers: bearer, json: { level: 'debug' } })
    expect(put.status).toBe(403)
  })

  it('leaves health, readiness, the OpenAPI document and the dashboard open', async () => {
    const { base } = await secured()
    expect((await call(base, 'GET', '/healthz')).status).toBe(200)
    expect((await call(base, 'GET', '/readyz')).status).toBe(200)
    expect((await call(base, 'GET', '/api/openapi.json')).status).toBe(200)
    expect((await call(base, 'GET', '/')).status).toBe(200)
  })

  it('needs Content-Type: application/json on every request that is not a GET (a cross-site form cannot send it)', async () => {
    const { base } = await secured()
    const alice = basic('alice', 'alice-pw')
    const form = await call(base, 'PUT', '/api/log-level', { headers: { ...alice, 'content-type': 'application/x-www-form-urlencoded' }, body: 'level=debug' })
    expect(form.status).toBe(415)
    expect(form.body.code).toBe(ErrorCodes.REQUEST_INVALID)
    const plain = await call(base, 'PUT', '/api/log-level', { headers: { ...alice, 'content-type': 'text/plain' }, body: '{"level":"debug"}' })
    expect(plain.status).toBe(415)
    expect((await call(base, 'GET', '/api/log-level', { headers: alice })).body).toEqual({ level: 'silent' })
  })

  it('forgets remembered credentials when the users file is read again', async () => {
    const { b, base, usersFile } = await secured()
    const old = basic('bob', 'bob-pw')
    expect((await call(base, 'GET', '/api/whoami', { headers: old })).status).toBe(200)
    await writeUsers(usersFile, { alice: 'alice-pw', bob: 'new-pw' })
    await b.broker.reloadAuth()
    expect((await call(base, 'GET', '/api/whoami', { headers: old })).status).toBe(401)
    expect((await call(base, 'GET', '/api/whoami', { headers: basic('bob', 'new-pw') })).status).toBe(200)
  })

  it('sends no CORS headers, and the security headers on every answer', async () => {
    const { base } = await secured()
    const answer = await call(base, 'GET', '/api/status', { headers: { ...basic('bob', 'bob-pw'), origin: 'https://evil.example' } })
    expect(answer.headers.get('access-control-allow-origin')).toBeNull()
    expect(answer.headers.get('x-content-type-options')).toBe('nosniff')
    expect(answer.headers.get('x-frame-options')).toBe('DENY')
    expect(answer.headers.get('referrer-policy')).toBe('no-referrer')
    expect(answer.headers.get('content-security-policy')).toContain("default-src 'self'")
  })
})

describe('HTTP access without a users file', () => {
  it('is open: every request is admin', async () => {
    const b = await startBroker({ http: { port: 0 } })
    brokers.push(b)
    const base = httpBase(b.broker)
    expect((await call(base, 'GET', '/api/whoami')).body).toEqual({ user: null, role: 'admin' })
    expect((await call(base, 'PUT', '/api/log-level', { json: { level: 'error' } })).status).toBe(200)
    expect((await call(base, 'GET', '/metrics')).status).toBe(200)
  })

  it('refuses to start on a host beyond loopback, naming http.host', async () => {
    const dataDir = await root.freshDir('data')
    const refused = await createBroker({ port: 0, dataDir, logLevel: 'silent', http: { port: 0, host: '0.0.0.0' } }).then(() => null, (err: unknown) => err)
    expect(refused).toBeInstanceOf(ConfigError)
    expect((refused as ConfigError).key).toBe('http.host')
    expect((refused as ConfigError).code).toBe(ErrorCodes.CONFIG_INVALID)
  })

  it('starts beyond loopback with a users file', async () => {
    const usersFile = await writeUsers(join(await root.freshDir('users'), 'users'), { alice: 'alice-pw' })
    const b = await startBroker({ http: { port: 0, host: '0.0.0.0' }, auth: { usersFile } })
    brokers.push(b)
    expect((await call(httpBase(b.broker), 'GET', '/api/status')).status).toBe(401)
  })

  it('opens no HTTP listener with http.enabled false, port or not', async () => {
    const b = await startBroker({ http: { port: 0, enabled: false } })
    brokers.push(b)
    expect(b.broker.endpoints.find((e) => e.kind === 'http')).toBeUndefined()
  })
})
