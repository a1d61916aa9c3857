import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import mqttPacket, { type ISubackPacket, type Packet } from 'mqtt-packet'
import mqtt from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { createBroker, type Broker, type BrokerOptions } from '../broker/index.js'
import { allowAll, type AccessPolicy, type FaultProbe, type HookName } from '../broker/mqtt/index.js'
import { taskGateDefaults } from '../broker/tasks/task-gate.js'
import { connectedClientsOf } from '../broker/mqtt/internals/clients.js'

const MAX_JSON_DEPTH = taskGateDefaults.maxJsonDepth
import { Clients, clientDefaults, expectNothingFor, waitForEvent, waitForMessages, waitUntil, type Message } from './helpers/mqtt-helpers.js'
import { uniqueTopic } from './helpers/start-broker.js'

/*
 * One packet must never take the broker down (docs/mqtt-adapter.md, "hook
 * failures"). Each test sends something hostile or makes a hook throw, then
 * shows the broker still serves another client: a publish/subscribe round
 * trip. An exception that reached the event loop would fail the run as an
 * unhandled error.
 */

interface Running {
  broker: Broker
  url: string
  close (): Promise<void>
}

const running: Running[] = []

async function start (internals: { access?: Partial<AccessPolicy>, faults?: FaultProbe } = {}, options: BrokerOptions = {}): Promise<Running> {
  const dataDir = await mkdtemp(join(tmpdir(), 'fleetq-hostile-'))
  const broker = await createBroker({ port: 0, logLevel: 'silent', ...options, dataDir }, {
    access: { ...allowAll, ...internals.access },
    ...(internals.faults === undefined ? {} : { faults: internals.faults })
  })
  const handle = {
    broker,
    url: `mqtt://127.0.0.1:${broker.port}`,
    async close () {
      await broker.close()
      await rm(dataDir, { recursive: true, force: true })
    }
  }
  running.push(handle)
  return handle
}

/** A fault probe that throws in `hook` for `clientId` only. */
function throwIn (hook: HookName, clientId: string | null): FaultProbe {
  return (h, id) => { if (h === hook && id === clientId) throw new Error(`probe: ${hook} fails on purpose`) }
}

describe('hostile input and failing hooks', () => {
  const clients = new Clients()
  afterEach(async () => {
    await clients.closeAll()
    await Promise.all(running.splice(0).map((r) => r.close()))
  })

  /** A new client publishes and receives its own QoS 1 message: the broker still serves. */
  async function roundTrip (url: string): Promise<void> {
    const topic = uniqueTopic('alive')
    const { client, messages } = await clients.connect(url, { clientId: `${topic}-c` })
    await client.subscribeAsync(topic, { qos: 1 })
    await client.publishAsync(topic, 'still here', { qos: 1 })
    await waitForMessages(messages, 1, 'round-trip message')
    expect(messages[0]?.payload).toBe('still here')
  }

  async function deadLetters (url: string, type: string): Promise<Message[]> {
    const { client, messages } = await clients.connect(url, { clientId: uniqueTopic('dead-watch') })
    await client.subscribeAsync(`$fleetq/dead/${type}`, { qos: 1 })
    return messages
  }

  describe('deeply nested JSON on tasks/thumbnail (RangeError inside the task gate)', () => {
    const bombs = {
      arrays: '['.repeat(5000) + ']'.repeat(5000),
      objects: '{"a":'.repeat(5000) + '1' + '}'.repeat(5000)
    }
    for (const [name, payload] of Object.entries(bombs)) {
      it(`dead-letters ${name} nested 5000 deep with the reason, and keeps serving`, async () => {
        const r = await start()
        const dead = await deadLetters(r.url, 'thumbnail')
        const { client } = await clients.connect(r.url, { clientId: uniqueTopic('bomber') })
        await client.publishAsync('tasks/thumbnail', payload, { qos: 1 })
        await waitForMessages(dead, 1, 'dead letter')
        const record = JSON.parse(dead[0]!.payload) as { reason: string, issues: Array<{ keyword: string, message: string }>, bytes: number }
        expect(record.reason).toBe('validation')
        expect(record.issues).toEqual([expect.objectContaining({ keyword: 'maxDepth', message: expect.stringContaining(String(MAX_JSON_DEPTH)) })])
        expect(record.bytes).toBe(Buffer.byteLength(payload))
        expect(r.broker.stats().tasks.invalid).toBe(1)
        expect(r.broker.stats().hookErrors).toBe(0)
        await roundTrip(r.url)
      })
    }

    it('dead-letters it also behind $delayed/, at once', async () => {
      const r = await start()
      const dead = await deadLetters(r.url, 'thumbnail')
      const { client } = await clients.connect(r.url, { clientId: uniqueTopic('bomber') })
      await client.publishAsync('$delayed/60/tasks/thumbnail', bombs.arrays, { qos: 1 })
      await waitForMessages(dead, 1, 'dead letter')
      expect(r.broker.stats().delayed.pending).toBe(0)
      await roundTrip(r.url)
    })

    it(`accepts ${MAX_JSON_DEPTH} levels, dead-letters ${MAX_JSON_DEPTH + 1}`, async () => {
      // A type without a schema (allowUnknownTypes): only the depth limit applies.
      const r = await start({}, { tasks: { allowUnknownTypes: true } })
      const dead = await deadLetters(r.url, 'deep')
      const { client: worker, messages } = await clients.connect(r.url, { clientId: uniqueTopic('worker') })
      await worker.subscribeAsync('tasks/deep', { qos: 1 })
      const nested = (depth: number): string => '{"a":'.repeat(depth - 1) + '[1]' + '}'.repeat(depth - 1)
      const { client: producer } = await clients.connect(r.url, { clientId: uniqueTopic('producer') })
      await producer.publishAsync('tasks/deep', nested(MAX_JSON_DEPTH), { qos: 1 })
      await producer.publishAsync('tasks/deep', nested(MAX_JSON_DEPTH + 1), { qos: 1 })
      await waitForMessages(messages, 1, 'wrapped task')
      await waitForMessages(dead, 1, 'dead letter')
      expect((JSON.parse(messages[0]!.payload) as { payload: unknown }).payload).toEqual(JSON.parse(nested(MAX_JSON_DEPTH)))
      expect(r.broker.stats().tasks).toMatchObject({ wrapped: 1, invalid: 1 })
    })
  })

  describe('valid JSON of an unexpected shape on broker command topics', () => {
    const shapes = ['null', '5', '[]', '"x"', 'true']
    for (const topic of ['$fleetq/share/prefetch', '$fleetq/schedules/request']) {
      it(`ignores ${shapes.join(', ')} on ${topic} with a log line, and keeps serving`, async () => {
        const r = await start()
        const id = uniqueTopic('shaper')
        const { client } = await clients.connect(r.url, { clientId: id })
        for (const shape of shapes) await client.publishAsync(topic, shape, { qos: 1 })
        // The publisher is still connected and served too.
        await client.subscribeAsync(`${id}/echo`, { qos: 1 })
        const echoed = waitForEvent(client, 'message')
        await client.publishAsync(`${id}/echo`, 'ok', { qos: 1 })
        await echoed
        expect(client.connected).toBe(true)
        expect(r.broker.stats().hookErrors).toBe(0)
        await roundTrip(r.url)
      })
    }
  })

  describe('a hook that throws refuses that packet or client; the broker goes on', () => {
    it('authenticate: CONNACK 0x03 (server unavailable) for that client only', async () => {
      const r = await start({ access: { authenticate: (c) => { if (c.id === 'boom') throw new Error('auth store down'); return true } } })
      const client = mqtt.connect(r.url, { ...clientDefaults, clientId: 'boom' })
      const refused = await new Promise<Error & { code?: number }>((resolve) => client.once('error', resolve))
      client.end(true)
      expect(refused.code).toBe(3)
      expect(r.broker.stats().hookErrors).toBe(1)
      await roundTrip(r.url)
    })

    it('authenticate: a false verdict is CONNACK 0x05 (not authorized), not a hook error', async () => {
      const r = await start({ access: { authenticate: async (c) => c.id !== 'nope' } })
      const client = mqtt.connect(r.url, { ...clientDefaults, clientId: 'nope' })
      const refused = await new Promise<Error & { code?: number }>((resolve) => client.once('error', resolve))
      client.end(true)
      expect(refused.code).toBe(5)
      expect(r.broker.stats().hookErrors).toBe(0)
      await roundTrip(r.url)
    })

    it('authorizePublish: the publisher is disconnected without a PUBACK, nothing is routed', async () => {
      const topic = uniqueTopic('boom')
      const r = await start({ access: { authorizePublish: (_c, t) => { if (t === topic) throw new Error('acl store down'); return true } } })
      const { client: sub, messages } = await clients.connect(r.url, { clientId: `${topic}-sub` })
      await sub.subscribeAsync(topic, { qos: 1 })
      const { client: pub } = await clients.connect(r.url, { clientId: `${topic}-pub` })
      let acked = false
      pub.publish(topic, 'x', { qos: 1 }, () => { acked = true })
      await waitForEvent(pub, 'close')
      expect(acked).toBe(false)
      expect(r.broker.stats().hookErrors).toBe(1)
      await roundTrip(r.url)
      expect(messages).toEqual([])
    })

    it('authorizeSubscribe: SUBACK 0x80 for that filter; the connection stays up', async () => {
      const topic = uniqueTopic('boom')
      const r = await start({ access: { authorizeSubscribe: (_c, f) => { if (f === `${topic}/bad`) throw new Error('acl store down'); return true } } })
      const { client, messages } = await clients.connect(r.url, { clientId: `${topic}-c` })
      const granted = await subscribeGranted(client, [`${topic}/bad`, `${topic}/good`])
      expect(granted).toEqual([128, 1])
      await client.publishAsync(`${topic}/good`, 'x', { qos: 1 })
      await waitForMessages(messages, 1, 'message on the granted filter')
      expect(r.broker.stats().hookErrors).toBe(1)
      await roundTrip(r.url)
    })

    it('authorizeForward: that subscriber is disconnected, others get the message, its session keeps it', async () => {
      const topic = uniqueTopic('boom')
      let failing = true
      const r = await start({ faults: (hook, id) => { if (failing) throwIn('authorizeForward', `${topic}-victim`)(hook, id) } })
      const { client: victim } = await clients.connect(r.url, { clientId: `${topic}-victim`, clean: false })
      await victim.subscribeAsync(topic, { qos: 1 })
      const { client: other, messages } = await clients.connect(r.url, { clientId: `${topic}-other` })
      await other.subscribeAsync(topic, { qos: 1 })
      const closed = waitForEvent(victim, 'close')
      await r.broker.publish({ topic, payload: Buffer.from('m1'), qos: 1 })
      await closed
      await waitForMessages(messages, 1, 'message to the other subscriber')
      expect(r.broker.stats().hookErrors).toBe(1)
      await roundTrip(r.url)
      // The victim's persistent session still holds the message: it comes on reconnect.
      failing = false
      const back = await clients.connect(r.url, { clientId: `${topic}-victim`, clean: false })
      await waitForMessages(back.messages, 1, 'the message kept for the victim')
      expect(back.messages[0]?.payload).toBe('m1')
    })

    it('published: the publisher is disconnected; the broker goes on', async () => {
      const topic = uniqueTopic('boom')
      const r = await start({ faults: throwIn('published', `${topic}-pub`) })
      const { client: pub } = await clients.connect(r.url, { clientId: `${topic}-pub` })
      pub.publish(topic, 'x', { qos: 0 })
      await waitForEvent(pub, 'close')
      expect(r.broker.stats().hookErrors).toBe(1)
      await roundTrip(r.url)
    })

    it('PUBACK: the member is disconnected and its group message goes to another member', async () => {
      const topic = uniqueTopic('boom')
      const r = await start({ faults: throwIn('puback', `${topic}-m1`) })
      const group: Message[] = []
      const { client: m1 } = await clients.connect(r.url, { clientId: `${topic}-m1` }, group)
      await m1.subscribeAsync(`$share/g/${topic}`, { qos: 1 })
      const closed = waitForEvent(m1, 'close')
      const { client: pub } = await clients.connect(r.url, { clientId: `${topic}-pub` })
      await pub.publishAsync(topic, 'job', { qos: 1 })
      await closed // m1 received it, its PUBACK failed in the hook
      const { client: m2, messages } = await clients.connect(r.url, { clientId: `${topic}-m2` })
      await m2.subscribeAsync(`$share/g/${topic}`, { qos: 1 })
      await waitForMessages(messages, 1, 'the message taken back from m1')
      expect(messages[0]).toMatchObject({ payload: 'job', dup: true })
      expect(group.map((m) => m.payload)).toEqual(['job'])
      expect(r.broker.stats().hookErrors).toBe(1)
      await roundTrip(r.url)
    })

    it("'subscribe' listener: the client is disconnected (it would not be a group member)", async () => {
      const topic = uniqueTopic('boom')
      const r = await start({ faults: throwIn('subscribe', `${topic}-c`) })
      const { client } = await clients.connect(r.url, { clientId: `${topic}-c` })
      const closed = waitForEvent(client, 'close')
      client.subscribe(`$share/g/${topic}`, { qos: 1 })
      await closed
      expect(r.broker.stats().hookErrors).toBe(1)
      await roundTrip(r.url)
    })

    it("'clientDisconnect' listener: counted; the broker goes on", async () => {
      const topic = uniqueTopic('boom')
      const r = await start({ faults: throwIn('clientDisconnect', `${topic}-c`) })
      const { client } = await clients.connect(r.url, { clientId: `${topic}-c` })
      await client.endAsync()
      await waitUntil(() => r.broker.stats().hookErrors === 1, 'the failure to be counted')
      await roundTrip(r.url)
    })
  })

  // mqemitter queues emits beyond its concurrency and, once they match no one,
  // ran them in one synchronous chain: RangeError, process gone
  // (broker/mqtt/internals/emit-recursion.ts).
  it('QoS 0 flood: a stalled subscriber that disconnects mid-flood does not overflow the stack', async () => {
    // Unthrottled, so the flood is as fast as the socket allows (limits.publishesPerSecondPerClient).
    const r = await start({}, { limits: { publishesPerSecondPerClient: 0 } })
    const port = Number(new URL(r.url).port)
    const topic = uniqueTopic('flood')
    const publisher = await rawSocket(port, `${topic}-pub`)
    const one = mqttPacket.generate({ cmd: 'publish', topic, payload: Buffer.alloc(0), qos: 0, retain: false, dup: false, messageId: undefined } as Packet)
    const batch = Buffer.concat(Array.from({ length: 5000 }, () => one))
    for (let round = 0; round < 2; round++) {
      const subscriber = await rawSocket(port, `${topic}-sub${round}`)
      const suback = once(subscriber, 'data')
      subscriber.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] } as Packet))
      await suback
      subscriber.pause() // its socket fills up: Aedes holds each delivery until it drains
      // Flood until the broker stops reading the publisher: mqemitter's queue is then full.
      while (publisher.writableLength < 4 * 1024 * 1024) {
        publisher.write(batch)
        await new Promise((resolve) => setImmediate(resolve))
      }
      subscriber.destroy()
      await waitUntil(() => publisher.writableLength === 0, 'the broker to read the rest of the flood', 30_000)
    }
    publisher.destroy()
    expect(r.broker.stats().hookErrors).toBe(0)
    await roundTrip(r.url)
  })

  // Found by the fuzz harness: Aedes registered a client whose socket closed
  // between authenticate and registerClient, for good
  // (broker/mqtt/internals/closed-clients.ts). A CONNECT the persistence
  // answers at once may register before the close arrives; it must then be
  // unregistered by the close, and nothing may be registered after it.
  it('a socket closed during CONNECT is not left registered', async () => {
    const r = await start()
    const port = Number(new URL(r.url).port)
    const prefix = uniqueTopic('gone')
    let registered = 0
    let unregistered = 0
    r.broker.aedes.on('client', () => { registered++ })
    r.broker.aedes.on('clientDisconnect', () => { unregistered++ })
    // The broker runs in this process: its accepted sockets are TCP handles here too.
    const baseline = openTcpSockets()
    for (let i = 0; i < 100; i++) {
      const socket = connect(port, '127.0.0.1')
      socket.on('error', () => undefined)
      await once(socket, 'connect')
      socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: `${prefix}-${i}`, clean: true, keepalive: 30 } as Packet))
      // Closed while the CONNECT is still on its way through the persistence steps.
      await new Promise((resolve) => setImmediate(resolve))
      socket.destroy()
    }
    // Every close processed: both ends of each of the 100 connections are gone.
    await waitUntil(() => openTcpSockets() === baseline, () => `the broker to close the sockets (${openTcpSockets()} open, ${baseline} before)`)
    await waitUntil(() => r.broker.stats().connectedClients === 0, () => `${r.broker.stats().connectedClients} closed clients still registered`)
    expect(unregistered).toBe(registered)
    expect(Object.keys(connectedClientsOf(r.broker.aedes)).filter((id) => id.startsWith(prefix))).toEqual([])
    // Clean sessions: nothing stored for any of them.
    expect(r.broker.stats().sessions.totalClients).toBe(0)
    // A CONNECT still in the persistence steps must not register a closed client later.
    await expectNothingFor(500, () => r.broker.stats().connectedClients > 0, () => `${r.broker.stats().connectedClients} closed clients registered after the close`)
    await roundTrip(r.url)
  })
})

/** TCP sockets open in this process (client and accepted ends alike). */
function openTcpSockets (): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap').length
}

/** A connected MQTT 3.1.1 socket (CONNACK read), for floods mqtt.js would pace. */
async function rawSocket (port: number, clientId: string): Promise<Socket> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => undefined)
  await once(socket, 'connect')
  const connack = once(socket, 'data')
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive: 0 } as Packet))
  await connack
  return socket
}

async function subscribeGranted (client: MqttClient, filters: string[]): Promise<number[]> {
  const suback = new Promise<ISubackPacket>((resolve) => {
    const onPacket = (packet: { cmd: string }): void => {
      if (packet.cmd === 'suback') { client.off('packetreceive', onPacket); resolve(packet as ISubackPacket) }
    }
    client.on('packetreceive', onPacket)
  })
  client.subscribe(filters, { qos: 1 })
  // a return code per filter, 0x80 for a refused one (MQTT 3.1.1 §3.9.3)
  return (await suback).granted as number[]
}
