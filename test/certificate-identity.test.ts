import { join } from 'node:path'
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createBroker, type BrokerOptions, type ListenerKind } from '../broker/index.js'
import { ConfigError, ErrorCodes } from '../protocol/errors.js'
import { clientDefaults, Clients, summary, waitForEvent, waitForMessages, waitUntil, type TestClient } from './helpers/mqtt-helpers.js'
import { makeTestPki, subscribeGranted, writeAcl, writeUsers, type KeyPair, type TestPki } from './helpers/security-fixtures.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { tempRoot } from './helpers/temp-root.js'

/*
 * `tls.certificateIdentity` (Mosquitto's `use_identity_as_username`,
 * docs/security.md): a client certificate verified against `tls.ca` names
 * the user, with no password check, and the CONNECT's user name is ignored.
 * A TLS client without one is checked by user name and password. The test
 * PKI is made with the openssl command when the file starts.
 */

const root = tempRoot('fleetq-cert-identity-')
const clients = new Clients()
const brokers: TestBroker[] = []
let pki: TestPki
let usersFile: string
let aclFile: string

beforeAll(async () => {
  pki = await makeTestPki(await root.freshDir('pki'),
    { dev1: 'dev1', ops: 'ops', plus: '+', hash: '#', slash: 'ops/x' },
    { ops: 'ops' })
  // dev1 is not in the users file: only its certificate lets it in.
  usersFile = await writeUsers(join(root.path, 'users'), { ops: 'ops-pw', alice: 'alice-pw' })
  aclFile = await writeAcl(join(root.path, 'acl'), ['pattern readwrite fleet/%u/#'])
})

afterEach(async () => {
  await clients.closeAll()
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})

/** A broker with TLS (certificate identity on unless `tls` says otherwise), the users file and the ACL file; ops is admin. */
async function secure (tls: Partial<NonNullable<BrokerOptions['tls']>> = {}, options: BrokerOptions = {}): Promise<TestBroker> {
  const b = await startBroker({
    tls: { port: 0, cert: pki.server.certFile, key: pki.server.keyFile, ca: pki.ca.certFile, certificateIdentity: true, ...tls },
    auth: { usersFile, aclFile, admins: ['ops'] },
    ...options
  })
  brokers.push(b)
  return b
}

function urlOf (b: TestBroker, kind: Extract<ListenerKind, 'mqtts' | 'wss'>): string {
  const endpoint = b.broker.endpoints.find((e) => e.kind === kind)
  if (endpoint === undefined) throw new Error(`no ${kind} listener`)
  return kind === 'mqtts' ? `mqtts://localhost:${endpoint.port}` : `wss://localhost:${endpoint.port}/mqtt`
}

/** Options of a TLS client trusting the test CA only, presenting `identity` if given. */
function tlsOptions (identity: KeyPair | undefined, options: IClientOptions): IClientOptions {
  return { ca: pki.ca.cert, rejectUnauthorized: true, ...(identity === undefined ? {} : { cert: identity.cert, key: identity.key }), ...options }
}

let n = 0
/** Connects over TLS (or WSS) with the client certificate `identity`, or none. */
function overTls (b: TestBroker, identity: KeyPair | undefined, options: IClientOptions = {}, kind: 'mqtts' | 'wss' = 'mqtts'): Promise<TestClient> {
  return clients.connect(urlOf(b, kind), tlsOptions(identity, { clientId: `cert-${n++}`, ...options }))
}

/** The CONNACK return code of a refused CONNECT (mqtt.js puts it on the error's `code`). */
async function refusal (url: string, options: IClientOptions): Promise<number | undefined> {
  const client = mqtt.connect(url, { ...clientDefaults, clientId: `refused-${n++}`, ...options })
  try {
    return await new Promise<number | undefined>((resolve, reject) => {
      client.once('connect', () => { reject(new Error(`${url} accepted the CONNECT`)) })
      client.once('error', (err) => { resolve((err as Error & { code?: number }).code) })
      client.once('close', () => { resolve(undefined) })
    })
  } finally {
    client.end(true)
  }
}

/** Publishes what the broker refuses: the connection ends without a PUBACK. */
async function publishRefused (client: MqttClient, topic: string): Promise<void> {
  const closed = waitForEvent(client, 'close')
  client.publish(topic, 'refused', { qos: 1 }, () => undefined)
  await closed
}

describe('certificate identity (tls.certificateIdentity)', () => {
  it('takes a verified certificate\'s CN as the user, with no password: CN=dev1 may use fleet/dev1/#, not fleet/ops/#', async () => {
    const b = await secure()
    const dev1 = await overTls(b, pki.clients['dev1'], { clientId: 'sensor-17' })
    expect(await subscribeGranted(dev1.client, ['fleet/dev1/#', 'fleet/ops/#', 'fleet/sensor-17/#'])).toEqual([1, 128, 128])
    await dev1.client.publishAsync('fleet/dev1/temp', '21.5', { qos: 1 })
    await waitForMessages(dev1.messages, 1, 'its own message')
    expect(summary(dev1.messages)).toEqual(['fleet/dev1/temp=21.5'])
    await publishRefused(dev1.client, 'fleet/ops/temp')
    expect(b.broker.stats().auth).toEqual({ accepted: 1, refused: 0 })
    expect(b.broker.stats().access).toMatchObject({ publishDenied: 1, subscribeDenied: 2 })

    // The users file does not know dev1: without its certificate it is refused.
    expect(await refusal(b.url, { username: 'dev1' })).toBe(4)
    expect(await refusal(urlOf(b, 'mqtts'), tlsOptions(undefined, { username: 'dev1', password: 'dev1-pw' }))).toBe(4)
    expect(b.broker.stats().auth).toEqual({ accepted: 1, refused: 2 })
  })

  it('ignores the CONNECT\'s user name and password when a certificate is presented, for the ACL and the admin role', async () => {
    const b = await secure()
    // The right password of ops does not make a dev1 certificate ops.
    const claimsOps = await overTls(b, pki.clients['dev1'], { username: 'ops', password: 'ops-pw' })
    expect(await subscribeGranted(claimsOps.client, ['fleet/dev1/#', 'fleet/ops/#', '$SYS/#'])).toEqual([1, 128, 128])
    // Nor is a wrong password checked.
    const wrongPassword = await overTls(b, pki.clients['dev1'], { username: 'ops', password: 'wrong' })
    expect(await subscribeGranted(wrongPassword.client, ['fleet/dev1/#', 'fleet/ops/#'])).toEqual([1, 128])
    // The ops certificate is ops, admin included, whatever the CONNECT says.
    const ops = await overTls(b, pki.clients['ops'], { username: 'dev1' })
    expect(await subscribeGranted(ops.client, ['fleet/ops/#', 'fleet/dev1/#', '$SYS/#'])).toEqual([1, 128, 1])
    expect(b.broker.stats().auth).toEqual({ accepted: 3, refused: 0 })
  })

  it('a TLS client without a certificate falls back to user name and password', async () => {
    const b = await secure()
    const ops = await overTls(b, undefined, { username: 'ops', password: 'ops-pw' })
    expect(await subscribeGranted(ops.client, ['fleet/ops/#', 'fleet/dev1/#', '$SYS/#'])).toEqual([1, 128, 1])
    const url = urlOf(b, 'mqtts')
    expect(await refusal(url, tlsOptions(undefined, { username: 'ops', password: 'wrong' }))).toBe(4)
    expect(await refusal(url, tlsOptions(undefined, { username: 'ops' }))).toBe(4)
    expect(await refusal(url, tlsOptions(undefined, {}))).toBe(5)
    expect(b.broker.stats().auth).toEqual({ accepted: 1, refused: 3 })
  })

  it('a certificate from a CA the broker does not trust names nobody: the user name and password decide', async () => {
    const b = await secure()
    const stranger = pki.strangers['ops']
    const url = urlOf(b, 'mqtts')
    expect(await refusal(url, tlsOptions(stranger, {}))).toBe(5)
    expect(await refusal(url, tlsOptions(stranger, { username: 'ops', password: 'wrong' }))).toBe(4)
    const alice = await overTls(b, stranger, { username: 'alice', password: 'alice-pw' })
    expect(await subscribeGranted(alice.client, ['fleet/alice/#', 'fleet/ops/#', '$SYS/#'])).toEqual([1, 128, 128])
  })

  it('without certificateIdentity a verified certificate is no identity: the user name and password decide', async () => {
    const b = await secure({ certificateIdentity: false })
    const url = urlOf(b, 'mqtts')
    expect(await refusal(url, tlsOptions(pki.clients['ops'], {}))).toBe(5)
    expect(await refusal(url, tlsOptions(pki.clients['ops'], { username: 'ops', password: 'wrong' }))).toBe(4)
    const alice = await overTls(b, pki.clients['ops'], { username: 'alice', password: 'alice-pw' })
    expect(await subscribeGranted(alice.client, ['fleet/alice/#', 'fleet/ops/#', '$SYS/#'])).toEqual([1, 128, 128])
  })

  it('applies to WSS too', async () => {
    const b = await secure({}, { wss: { port: 0 } })
    const dev1 = await overTls(b, pki.clients['dev1'], { username: 'ops', password: 'ops-pw' }, 'wss')
    expect(await subscribeGranted(dev1.client, ['fleet/dev1/#', 'fleet/ops/#'])).toEqual([1, 128])
    expect(await refusal(urlOf(b, 'wss'), tlsOptions(undefined, {}))).toBe(5)
  })

  it('a certificate CN with +, # or / gains nothing from a %u pattern', async () => {
    const b = await secure()
    for (const name of ['plus', 'hash', 'slash']) {
      const c = await overTls(b, pki.clients[name])
      // `fleet/%u/#` must not become `fleet/+/#`, `fleet/#/#` or `fleet/ops/x/#`.
      expect(await subscribeGranted(c.client, ['fleet/+/#', 'fleet/#', 'fleet/ops/#', 'fleet/ops/x/#']), name).toEqual([128, 128, 128, 128])
      await publishRefused(c.client, 'fleet/ops/x/y')
    }
  })

  it('a persistent session taken over by another identity keeps nothing the new one may not read', async () => {
    const b = await secure()
    const gateway = await overTls(b, pki.clients['dev1'], { clientId: 'gateway', clean: false })
    expect(await subscribeGranted(gateway.client, ['fleet/dev1/#'])).toEqual([1])
    await gateway.client.endAsync()
    // From the broker itself: the ACL file here gives no client fleet/ but its own.
    const publish = (topic: string, payload: string): Promise<void> => b.broker.publish({ topic, payload: Buffer.from(payload), qos: 1 })
    await publish('fleet/dev1/queued', 'q1')
    await waitUntil(() => b.broker.stats().queuedMessages['gateway'] === 1, 'the message queued for the session')

    // Same client id, now alice by password over plain TCP.
    const alice = await clients.connect(b.url, { clientId: 'gateway', clean: false, username: 'alice', password: 'alice-pw' })
    expect(alice.connack.sessionPresent).toBe(true)
    expect(await subscribeGranted(alice.client, ['fleet/alice/#'])).toEqual([1])
    await publish('fleet/dev1/live', 'l1')
    await publish('fleet/alice/marker', 'm1')
    await waitForMessages(alice.messages, 1, 'the marker')
    expect(summary(alice.messages)).toEqual(['fleet/alice/marker=m1'])
    // The restored filter was checked as alice and refused; the queued copy withheld.
    expect(b.broker.stats().access).toMatchObject({ subscribeDenied: 1, receiveDenied: 1 })
    await waitUntil(() => (b.broker.stats().queuedMessages['gateway'] ?? 0) === 0, 'the withheld copy dropped from the queue')
  })

  it('refuses to start with certificateIdentity and no tls.ca, naming tls.ca', async () => {
    const err = await createBroker({
      port: 0, logLevel: 'silent', persistence: 'memory',
      tls: { port: 0, cert: pki.server.certFile, key: pki.server.keyFile, certificateIdentity: true }
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigError)
    expect(err).toMatchObject({ code: ErrorCodes.CONFIG_INVALID, key: 'tls.ca', message: expect.stringContaining('tls.certificateIdentity') as unknown })
  })
})

describe('authentication, beyond test/auth.test.ts', () => {
  it('a certificate-only broker: no users file and allowAnonymous false lets in verified certificates only', async () => {
    const b = await secure({}, { auth: { allowAnonymous: false, aclFile } })
    const dev1 = await overTls(b, pki.clients['dev1'])
    expect(await subscribeGranted(dev1.client, ['fleet/dev1/#', 'fleet/ops/#'])).toEqual([1, 128])
    expect(await refusal(urlOf(b, 'mqtts'), tlsOptions(undefined, {}))).toBe(5)
    expect(await refusal(urlOf(b, 'mqtts'), tlsOptions(pki.strangers['ops'], { username: 'ops', password: 'ops-pw' }))).toBe(4)
    expect(await refusal(b.url, { username: 'ops', password: 'ops-pw' })).toBe(4)
    expect(b.broker.stats().auth).toEqual({ accepted: 1, refused: 3 })
  })

  it('reloading the users file refuses a deleted user from then on; its open connection stays', async () => {
    const file = await writeUsers(join(await root.freshDir('users'), 'users'), { ops: 'ops-pw', alice: 'alice-pw' })
    const b = await secure({}, { auth: { usersFile: file, aclFile } })
    const alice = await clients.connect(b.url, { clientId: 'alice-1', username: 'alice', password: 'alice-pw' })
    await writeUsers(file, { ops: 'ops-pw' })
    await b.broker.reloadAuth()
    expect(await refusal(b.url, { username: 'alice', password: 'alice-pw' })).toBe(4)
    // Still connected, still alice.
    expect(await subscribeGranted(alice.client, ['fleet/alice/#'])).toEqual([1])
    await alice.client.publishAsync('fleet/alice/x', 'still here', { qos: 1 })
    await waitForMessages(alice.messages, 1, 'its own message')
    // A certificate needs no users-file line.
    expect((await overTls(b, pki.clients['dev1'])).client.connected).toBe(true)
  })
})
