import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { get } from 'node:http'
import { connect as rawConnect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { promisify } from 'node:util'
import mqtt, { type IClientOptions } from 'mqtt'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { loadBrokerConfig } from '../broker/config.js'
import { ConfigError, ErrorCodes, type BrokerOptions, type ListenerKind } from '../broker/index.js'
import { peerOf, type PeerInfo } from '../broker/listeners/index.js'
import { runCli, userLines } from './helpers/cli-process.js'
import { clientDefaults, Clients, waitForEvent, waitForMessages, waitUntil, type Message } from './helpers/mqtt-helpers.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'

const run = promisify(execFile)

/** PEM files of a test PKI, made with the openssl command at test time. */
interface Pki {
  dir: string
  ca: string
  serverCert: string
  serverKey: string
  /** Signed by `ca`, CN=device-7. */
  clientCert: string
  clientKey: string
  /** Signed by another CA that the broker does not know. */
  strangerCert: string
  strangerKey: string
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

async function makeCa (dir: string, name: string): Promise<{ cert: string, key: string }> {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  await run('openssl', ['req', '-x509', ...EC, '-keyout', key, '-out', cert, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  return { cert, key }
}

async function makeLeaf (dir: string, name: string, cn: string, ca: { cert: string, key: string }, extensions: string, serial: number): Promise<{ cert: string, key: string }> {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  const csr = join(dir, `${name}.csr`)
  const ext = join(dir, `${name}.ext`)
  await writeFile(ext, `basicConstraints=CA:FALSE\n${extensions}\n`)
  await run('openssl', ['req', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${cn}`])
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(serial), '-days', '2', '-out', cert, '-extfile', ext])
  return { cert, key }
}

async function makePki (): Promise<Pki> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetq-pki-'))
  const ca = await makeCa(dir, 'fleetq-test-ca')
  const server = await makeLeaf(dir, 'server', 'localhost', ca, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth', 2)
  const client = await makeLeaf(dir, 'client', 'device-7', ca, 'extendedKeyUsage=clientAuth', 3)
  const otherCa = await makeCa(dir, 'stranger-ca')
  const stranger = await makeLeaf(dir, 'stranger', 'intruder', otherCa, 'extendedKeyUsage=clientAuth', 4)
  return {
    dir, ca: ca.cert, serverCert: server.cert, serverKey: server.key,
    clientCert: client.cert, clientKey: client.key, strangerCert: stranger.cert, strangerKey: stranger.key
  }
}

let pki: Pki
let pem: { ca: Buffer, clientCert: Buffer, clientKey: Buffer, strangerCert: Buffer, strangerKey: Buffer }
const clients = new Clients()
const brokers: TestBroker[] = []
const sockets: Socket[] = []

beforeAll(async () => {
  pki = await makePki()
  const [ca, clientCert, clientKey, strangerCert, strangerKey] = await Promise.all(
    [pki.ca, pki.clientCert, pki.clientKey, pki.strangerCert, pki.strangerKey].map((path) => readFile(path)))
  pem = { ca: ca!, clientCert: clientCert!, clientKey: clientKey!, strangerCert: strangerCert!, strangerKey: strangerKey! }
})

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy()
  await clients.closeAll()
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})

afterAll(async () => {
  if (pki !== undefined) await rm(pki.dir, { recursive: true, force: true })
})

async function start (options: BrokerOptions): Promise<TestBroker> {
  const broker = await startBroker(options)
  brokers.push(broker)
  return broker
}

/** Every listener on a free port; TLS with the test CA (client certificates optional). */
function allListeners (extra: Partial<NonNullable<BrokerOptions['tls']>> = {}): BrokerOptions {
  return {
    tls: { port: 0, cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, ...extra },
    ws: { port: 0 },
    wss: { port: 0 }
  }
}

function portOf (b: TestBroker, kind: ListenerKind): number {
  const endpoint = b.broker.endpoints.find((e) => e.kind === kind)
  if (endpoint === undefined) throw new Error(`no ${kind} listener`)
  return endpoint.port
}

/** The URL and options an mqtt.js client uses to reach `kind`; TLS trusts the test CA only. */
function reach (b: TestBroker, kind: ListenerKind, withCertificate = false): { url: string, options: IClientOptions } {
  const port = portOf(b, kind)
  const identity = withCertificate ? { cert: pem.clientCert, key: pem.clientKey } : {}
  switch (kind) {
    case 'mqtt': return { url: `mqtt://127.0.0.1:${port}`, options: {} }
    case 'mqtts': return { url: `mqtts://localhost:${port}`, options: { ca: pem.ca, rejectUnauthorized: true, ...identity } }
    case 'ws': return { url: `ws://127.0.0.1:${port}/mqtt`, options: {} }
    case 'wss': return { url: `wss://localhost:${port}/mqtt`, options: { ca: pem.ca, rejectUnauthorized: true, ...identity } }
    case 'http': throw new Error('the HTTP listener does not speak MQTT')
  }
}

async function connect (b: TestBroker, kind: ListenerKind, options: IClientOptions = {}, withCertificate = false): Promise<{ messages: Message[], publish: (topic: string, payload: string) => Promise<void>, subscribe: (filter: string) => Promise<void> }> {
  const target = reach(b, kind, withCertificate)
  const { client, messages } = await clients.connect(target.url, { ...target.options, ...options })
  return {
    messages,
    publish: async (topic, payload) => { await client.publishAsync(topic, payload, { qos: 1 }) },
    subscribe: async (filter) => {
      const granted = await client.subscribeAsync(filter, { qos: 1 })
      expect(granted.map((g) => g.qos)).toEqual([1])
    }
  }
}

/**
 * Connects once and resolves with what ended the attempt: the client's error
 * if it had one, else the close. Fails if the client connects.
 */
async function refusal (url: string, options: IClientOptions): Promise<string> {
  const client = mqtt.connect(url, { ...clientDefaults, connectTimeout: 5000, ...options })
  try {
    return await new Promise<string>((resolve, reject) => {
      let error: Error | undefined
      client.on('error', (err) => { error ??= err })
      client.once('connect', () => { reject(new Error(`${url} connected, but should have been refused`)) })
      client.once('close', () => { resolve(error?.message ?? 'closed') })
    })
  } finally {
    client.end(true)
  }
}

describe('TLS and WebSocket listeners', () => {
  it('are off by default: only the TCP listener is bound', async () => {
    const b = await start({})
    expect(b.broker.endpoints).toEqual([{ kind: 'mqtt', host: '127.0.0.1', port: b.port }])
  })

  it('round-trips QoS 1 between TCP and each of TLS, WS and WSS, both ways', async () => {
    const b = await start(allListeners())
    expect(b.broker.endpoints.map((e) => e.kind)).toEqual(['mqtt', 'mqtts', 'ws', 'wss'])
    for (const endpoint of b.broker.endpoints) expect(endpoint.port).toBeGreaterThan(0)
    const tcp = await connect(b, 'mqtt')
    for (const [i, kind] of (['mqtts', 'ws', 'wss'] as const).entries()) {
      const other = await connect(b, kind)
      const outbound = uniqueTopic(`${kind}-to-tcp`)
      const inbound = uniqueTopic(`tcp-to-${kind}`)
      await tcp.subscribe(outbound)
      await other.subscribe(inbound)
      await other.publish(outbound, `from ${kind}`)
      await tcp.publish(inbound, `to ${kind}`)
      await waitForMessages(tcp.messages, i + 1, `${kind} → tcp`)
      expect(tcp.messages[i]).toMatchObject({ topic: outbound, payload: `from ${kind}`, qos: 1 })
      await waitForMessages(other.messages, 1, `tcp → ${kind}`)
      expect(other.messages).toEqual([expect.objectContaining({ topic: inbound, payload: `to ${kind}`, qos: 1 })])
    }
    expect(tcp.messages.map((m) => m.payload).sort()).toEqual(['from mqtts', 'from ws', 'from wss'])
  })

  it('offers the verified client certificate CN of a TLS or WSS connection to the adapter (peerOf)', async () => {
    const b = await start(allListeners())
    const peers = new Map<string, PeerInfo | undefined>()
    b.broker.aedes.on('client', (client) => { peers.set(client.id, peerOf(client.conn)) })
    await connect(b, 'mqtts', { clientId: 'tls-with-cert' }, true)
    await connect(b, 'wss', { clientId: 'wss-with-cert' }, true)
    await connect(b, 'mqtts', { clientId: 'tls-without-cert' })
    await connect(b, 'ws', { clientId: 'plain-ws' })
    await connect(b, 'mqtt', { clientId: 'plain-tcp' })
    // A certificate the CA did not sign gives no identity (requireCertificate is off here).
    const stranger = reach(b, 'mqtts')
    await clients.connect(stranger.url, { ...stranger.options, clientId: 'tls-stranger', cert: pem.strangerCert, key: pem.strangerKey })
    expect(Object.fromEntries(peers)).toEqual({
      'tls-with-cert': { listener: 'mqtts', remoteAddress: '127.0.0.1', certificateCN: 'device-7' },
      'wss-with-cert': { listener: 'wss', remoteAddress: '127.0.0.1', certificateCN: 'device-7' },
      'tls-without-cert': { listener: 'mqtts', remoteAddress: '127.0.0.1', certificateCN: undefined },
      'plain-ws': { listener: 'ws', remoteAddress: '127.0.0.1', certificateCN: undefined },
      'plain-tcp': { listener: 'mqtt', remoteAddress: '127.0.0.1', certificateCN: undefined },
      'tls-stranger': { listener: 'mqtts', remoteAddress: '127.0.0.1', certificateCN: undefined }
    })
  })

  it('with requireCertificate refuses TLS and WSS clients without a certificate from the CA, and accepts one with', async () => {
    const b = await start(allListeners({ requireCertificate: true }))
    for (const kind of ['mqtts', 'wss'] as const) {
      const target = reach(b, kind)
      const without = await refusal(target.url, target.options)
      expect(without, kind).toMatch(/certificate|alert|socket hang up|ECONNRESET|closed/i)
      const stranger = await refusal(target.url, { ...target.options, cert: pem.strangerCert, key: pem.strangerKey })
      expect(stranger, kind).toMatch(/certificate|alert|socket hang up|ECONNRESET|closed/i)
      const topic = uniqueTopic(kind)
      const device = await connect(b, kind, {}, true)
      await device.subscribe(topic)
      await device.publish(topic, 'hello')
      await waitForMessages(device.messages, 1, `${kind} echo`)
    }
    // The plain listeners do not ask for certificates.
    await connect(b, 'ws')
    await connect(b, 'mqtt')
  })

  it('serves MQTT on /mqtt only, with the "mqtt" subprotocol', async () => {
    const b = await start({ ws: { port: 0 } })
    const port = portOf(b, 'ws')
    // A WebSocket handshake on another path: 404, no WebSocket, no MQTT.
    const status = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/other`, ['mqtt'])
      ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate() })
      ws.on('open', () => { reject(new Error('a WebSocket opened on /other')) })
      ws.on('error', () => undefined)
    })
    expect(status).toBe(404)
    // mqtt.js on that path never gets a CONNACK (refusal() fails if it does).
    await refusal(`ws://127.0.0.1:${port}/other`, {})
    // Plain HTTP: 404 elsewhere, 426 on the MQTT path.
    const httpStatus = (path: string): Promise<number> => new Promise((resolve, reject) => {
      get({ host: '127.0.0.1', port, path }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject)
    })
    expect(await httpStatus('/')).toBe(404)
    expect(await httpStatus('/mqtt')).toBe(426)
    // The subprotocol the client asks for is the one chosen [MQTT-6.0.0-4].
    const protocol = await new Promise<string>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/mqtt`, ['mqtt'])
      ws.on('open', () => { resolve(ws.protocol); ws.close() })
      ws.on('error', reject)
    })
    expect(protocol).toBe('mqtt')
    // /mqtt?query is still /mqtt; and the broker still serves MQTT there afterwards.
    const topic = uniqueTopic('ws')
    const { client, messages } = await clients.connect(`ws://127.0.0.1:${port}/mqtt?x=1`)
    await client.subscribeAsync(topic, { qos: 1 })
    await client.publishAsync(topic, 'after 404s', { qos: 1 })
    await waitForMessages(messages, 1, 'echo over ws')
  })

  it('refuses to start, with FLEETQ_CONFIG_INVALID naming the setting, on a bad certificate, key or CA', async () => {
    const wrongKey = join(pki.dir, 'wrong.key')
    await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', wrongKey])
    const notPem = join(pki.dir, 'not-pem.txt')
    await writeFile(notPem, 'hello\n')
    const tls = { port: 0, cert: pki.serverCert, key: pki.serverKey }
    const cases: Array<[BrokerOptions, string, RegExp]> = [
      [{ tls: { ...tls, cert: join(pki.dir, 'missing.crt') } }, 'tls.cert', /cannot read .*missing\.crt: no such file/],
      [{ tls: { ...tls, key: join(pki.dir, 'missing.key') } }, 'tls.key', /cannot read .*missing\.key: no such file/],
      [{ tls: { ...tls, key: wrongKey } }, 'tls.key', /is not the private key of the certificate/],
      [{ tls: { ...tls, cert: notPem } }, 'tls.cert', /is not a PEM certificate/],
      [{ tls: { ...tls, ca: notPem } }, 'tls.ca', /is not a PEM certificate/],
      [{ tls: { port: 0, key: pki.serverKey } }, 'tls.cert', /is required when tls.port or wss.port is set/],
      [{ tls: { ...tls, requireCertificate: true } }, 'tls.ca', /is required when tls.requireCertificate is true/],
      // The secure WebSocket listener needs the same files.
      [{ wss: { port: 0 }, tls: { cert: pki.serverCert } }, 'tls.key', /is required/]
    ]
    for (const [options, key, message] of cases) {
      const err = await startBroker({ ...options, persistence: 'memory' }).then(async (b) => { await b.close(); return undefined }, (e: unknown) => e)
      expect(err, key).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).code).toBe(ErrorCodes.CONFIG_INVALID)
      expect((err as ConfigError).key).toBe(key)
      expect((err as ConfigError).message).toMatch(message)
    }
  })

  it('reads the listener settings from flags, FLEETQ_* variables and the config file (paths next to the file)', async () => {
    const configFile = join(pki.dir, 'broker.json')
    await writeFile(configFile, JSON.stringify({ tls: { cert: 'certs/server.crt', key: '/abs/server.key', host: '0.0.0.0' }, ws: { host: '::1' } }))
    const { values } = await loadBrokerConfig(
      { config: configFile, tlsPort: '8883', requireCertificate: true, wsPort: '8080' },
      { FLEETQ_WSS_PORT: '8081', FLEETQ_TLS_CA: 'ca.pem' }
    )
    expect(values).toMatchObject({
      tls: { port: 8883, cert: join(pki.dir, 'certs/server.crt'), key: '/abs/server.key', host: '0.0.0.0', ca: 'ca.pem', requireCertificate: true },
      ws: { port: 8080, host: '::1' },
      wss: { port: 8081 }
    })
    await expect(loadBrokerConfig({ wssPort: 'https' }, {})).rejects.toThrow('invalid config "--wss-port": must be an integer from 0 to 65535, got "https"')
  })

  it('the CLI takes the listener flags and stops with one line and exit 2 on an unreadable certificate', async () => {
    const missing = join(pki.dir, 'nope.crt')
    const result = await runCli(['broker', '--persistence', 'memory', '--port', '0', '--tls-port', '0', '--tls-cert', missing, '--tls-key', pki.serverKey])
    expect(result.code).toBe(2)
    expect(userLines(result.stderr)).toEqual([`fleetq: invalid config "tls.cert": cannot read ${missing}: no such file (FLEETQ_CONFIG_INVALID)`])
  })

  it('close() releases every port: a new broker binds the same ones', async () => {
    const first = await start(allListeners())
    const ports = Object.fromEntries(first.broker.endpoints.map((e) => [e.kind, e.port]))
    // A connection on each listener, and a TCP socket stuck before its TLS handshake.
    for (const kind of ['mqtt', 'mqtts', 'ws', 'wss'] as const) await connect(first, kind)
    const stuck = rawConnect(ports.mqtts!, '127.0.0.1')
    stuck.on('error', () => undefined)
    await new Promise<void>((resolve) => stuck.once('connect', () => resolve()))
    await first.close()
    const second = await start({
      port: ports.mqtt!,
      tls: { port: ports.mqtts!, cert: pki.serverCert, key: pki.serverKey, ca: pki.ca },
      ws: { port: ports.ws! },
      wss: { port: ports.wss! },
      persistence: 'memory'
    })
    expect(Object.fromEntries(second.broker.endpoints.map((e) => [e.kind, e.port]))).toEqual(ports)
    for (const kind of ['mqtt', 'mqtts', 'ws', 'wss'] as const) await connect(second, kind)
    stuck.destroy()
  })

  it('a failed start closes the listeners it had opened', async () => {
    // Two ports known to be free: those of a broker that has closed.
    const probe = await start({ ...allListeners(), persistence: 'memory' })
    const free = { mqtts: portOf(probe, 'mqtts'), ws: portOf(probe, 'ws') }
    await probe.close()
    const holder = await start({ ws: { port: 0 }, persistence: 'memory' })
    const taken = portOf(holder, 'ws')
    // TLS and WS open first; WSS on a taken port then fails the start.
    const tls = { cert: pki.serverCert, key: pki.serverKey }
    const err = await startBroker({ tls: { port: free.mqtts, ...tls }, ws: { port: free.ws }, wss: { port: taken }, persistence: 'memory' })
      .then(async (b) => { await b.close(); return undefined }, (e: unknown) => e)
    expect(err).toMatchObject({ code: ErrorCodes.PORT_IN_USE })
    const again = await start({ tls: { port: free.mqtts, ...tls }, ws: { port: free.ws }, persistence: 'memory' })
    expect(again.broker.endpoints.map((e) => [e.kind, e.port]).slice(1)).toEqual([['mqtts', free.mqtts], ['ws', free.ws]])
  })
})

/** The first bytes a TLS client sends (its ClientHello, one loopback segment), caught by a plain TCP server. */
async function clientHello (): Promise<Buffer> {
  const server = createTcpServer()
  const first = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket) => socket.once('data', (chunk: Buffer) => { resolve(chunk); socket.destroy() }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const client = tlsConnect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', servername: 'localhost', ca: pem.ca })
  client.on('error', () => undefined)
  try {
    return await first
  } finally {
    client.destroy()
    server.close()
  }
}

/** A raw TCP connection from `localAddress` that sends `hello`: answered (a TLS handshake record back), or closed first. */
async function sendHello (port: number, hello: Buffer, localAddress = '127.0.0.1'): Promise<'answered' | 'closed'> {
  const socket = rawConnect({ port, host: '127.0.0.1', localAddress })
  sockets.push(socket)
  socket.on('error', () => undefined)
  socket.once('connect', () => socket.write(hello))
  return await new Promise((resolve) => {
    socket.once('data', (chunk: Buffer) => resolve(chunk[0] === 0x16 ? 'answered' : 'closed'))
    socket.once('close', () => resolve('closed'))
  })
}

describe('the TLS listener before MQTT starts', () => {
  const tls = (): NonNullable<BrokerOptions['tls']> => ({ port: 0, cert: pki.serverCert, key: pki.serverKey })

  it('refuses connections beyond the per-address burst at TCP accept: their ClientHello gets no answer', async () => {
    // 2 per second: a burst of 4 from one address (as in connection-limits.test.ts).
    const b = await start({ tls: tls(), limits: { connectsPerSecondPerAddress: 2 } })
    const hello = await clientHello()
    const outcomes = await Promise.all([1, 2, 3, 4, 5].map(() => sendHello(portOf(b, 'mqtts'), hello, '127.0.0.5')))
    expect(outcomes.filter((o) => o === 'answered')).toHaveLength(4)
    expect(outcomes.filter((o) => o === 'closed')).toHaveLength(1)
    expect(b.broker.stats().limits.connectsPerSecondPerAddress).toBe(1)
    // Another address has its own bucket, and gets as far as MQTT.
    const device = await connect(b, 'mqtts')
    await device.subscribe(uniqueTopic('tls-rate'))
  })

  it('counts a TLS connection once, from TCP accept until it closes', async () => {
    const b = await start({ tls: tls(), limits: { maxConnections: 2 } })
    // Counted twice (its TCP socket, then its TLS socket), the second client would be refused.
    const first = await connect(b, 'mqtts')
    const second = await connect(b, 'mqtts')
    const topic = uniqueTopic('tls-once')
    await first.subscribe(topic)
    await second.publish(topic, 'counted once')
    await waitForMessages(first.messages, 1, 'tls → tls')
    expect(await sendHello(portOf(b, 'mqtts'), await clientHello())).toBe('closed')
    expect(b.broker.stats().limits.maxConnections).toBe(1)
  })

  it('closes a connection that sends no ClientHello after connectTimeoutMs (not Node\'s 120 s); a client past its handshake stays', async () => {
    const b = await start({ tls: tls(), limits: { connectTimeoutMs: 1000 } })
    const topic = uniqueTopic('tls-idle')
    const device = await connect(b, 'mqtts')
    await device.subscribe(topic)
    const silent = rawConnect(portOf(b, 'mqtts'), '127.0.0.1')
    sockets.push(silent)
    silent.on('error', () => undefined)
    await waitForEvent(silent, 'connect')
    const since = Date.now()
    await waitForEvent(silent, 'close')
    const elapsed = Date.now() - since
    expect(elapsed).toBeGreaterThanOrEqual(900)
    expect(elapsed).toBeLessThan(5000)
    await waitUntil(() => b.broker.stats().limits.connectTimeoutMs === 1, 'the handshake timeout counted')
    // Idle longer than connectTimeoutMs since its handshake: still served.
    await device.publish(topic, 'still here')
    await waitForMessages(device.messages, 1, 'echo over TLS')
  })
})
