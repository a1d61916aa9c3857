import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import type { IClientOptions, MqttClient } from 'mqtt'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { DELAYED_DEAD_LETTER_TOPIC, delayedTopic, ManualClock, type BrokerOptions, type DelayedRefusal } from '../broker/index.js'
import { RawClient } from './helpers/raw-client.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { Clients, expectNothingFor, summary, waitForEvent, waitForMessages, waitUntil, type Message, type TestClient } from './helpers/mqtt-helpers.js'

/** What the broker publishes on `$fleetq/dead/$delayed` in place of a refused delayed publish. */
interface DelayedDeadLetter {
  reason: string
  refusal: DelayedRefusal
  taskType: string
  topic: string
  clientId: string | null
  issues: Array<{ path: string, message: string, keyword: string }>
  payload?: string
}

const thumb = { imageUrl: 'https://example.com/a.png', width: 10, height: 10 }
const T0 = Date.parse('2026-01-01T00:00:00Z')
const iso = (ms: number): string => new Date(ms).toISOString()

// Tests about when a message fires run the broker on a ManualClock (docs/scheduling.md,
// "testing"): the time is exact and nothing waits for real seconds. A window
// of real time is used only to assert that nothing arrives before the clock
// reaches the due time. Firing precision on the real clock is measured by bench/delayed.ts.

describe('delayed messages: $delayed/{seconds}/{topic}', () => {
  const brokers: TestBroker[] = []
  const clients = new Clients()
  const dirs: string[] = []
  const raws: RawClient[] = []
  afterEach(async () => {
    await clients.closeAll()
    await Promise.all(raws.splice(0).map((r) => r.end()))
    await Promise.all(brokers.splice(0).map((b) => b.close()))
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
  })

  async function broker (options: BrokerOptions = {}): Promise<TestBroker> {
    const b = await startBroker(options)
    brokers.push(b)
    return b
  }

  async function publisher (b: TestBroker, clientId = `pub-${uniqueTopic()}`): Promise<MqttClient> {
    return (await clients.connect(b.url, { clientId })).client
  }

  /** A connected client subscribed to `filter`. */
  async function subscriber (b: TestBroker, filter: string, options: IClientOptions = {}, qos: 0 | 1 | 2 = 1): Promise<TestClient> {
    const messages: Message[] = []
    const sub = await clients.connect(b.url, { clientId: `sub-${uniqueTopic()}`, ...options }, messages)
    const granted = await sub.client.subscribeAsync(filter, { qos })
    expect(granted.map((g) => g.qos)).toEqual([qos])
    return sub
  }

  /** Moves `clock` to `at` ms after T0 and asserts that none of `lists` gets a message meanwhile. */
  async function quietUntil (clock: ManualClock, at: number, what: string, ...lists: Message[][]): Promise<void> {
    clock.set(T0 + at)
    await expectNothingFor(200, () => lists.some((l) => l.length > 0), () => `${what} before its time: ${lists.flatMap(summary).join(', ')}`)
  }

  it('publishes the target after the delay with the same QoS and payload; $delayed/ itself reaches no subscriber', async () => {
    const clock = new ManualClock(T0)
    const b = await broker({ clock })
    const t = uniqueTopic('fire')
    const target = await subscriber(b, `${t}/#`)
    const everything = await subscriber(b, '#')
    const pub = await publisher(b)

    await pub.publishAsync(`$delayed/1/${t}/a`, 'hello', { qos: 1 })
    expect(b.broker.stats().delayed).toMatchObject({ pending: 1, accepted: 1, fired: 0, nextDueAt: iso(T0 + 1000) })
    await quietUntil(clock, 999, 'the delayed message', target.messages, everything.messages)
    clock.set(T0 + 1000)
    await waitForMessages(target.messages, 1, 'the delayed message')
    expect(target.messages[0]).toMatchObject({ topic: `${t}/a`, payload: 'hello', qos: 1, retain: false })

    await waitForMessages(everything.messages, 1, 'the target at the # subscriber')
    await expectNothingFor(300, () => target.messages.length > 1 || everything.messages.length > 1, () => `a second copy: ${summary(everything.messages).join(', ')}`)
    expect(summary(everything.messages)).toEqual([`${t}/a=hello`])
    expect(b.broker.stats().delayed).toMatchObject({ pending: 0, accepted: 1, fired: 1, nextDueAt: null })
    // fired the moment it fell due
    expect(b.broker.stats().delayed.lastLatenessMs).toBe(0)
  })

  it('takes fractional seconds, and keeps QoS 0 and QoS 2', async () => {
    const clock = new ManualClock(T0)
    const b = await broker({ clock })
    const t = uniqueTopic('qos')
    const sub = await subscriber(b, `${t}/#`, {}, 2)
    const pub = await publisher(b)

    await Promise.all([
      pub.publishAsync(`$delayed/0.25/${t}/frac`, 'f', { qos: 1 }),
      pub.publishAsync(`$delayed/1/${t}/q0`, 'zero', { qos: 0 }),
      pub.publishAsync(`$delayed/1/${t}/q2`, 'two', { qos: 2 })
    ])
    // QoS 0 has no acknowledgement: wait until the broker has it
    await waitUntil(() => b.broker.stats().delayed.accepted === 3, 'the three delayed publishes stored')
    await quietUntil(clock, 249, 'the 0.25 s message', sub.messages)
    clock.set(T0 + 250)
    await waitForMessages(sub.messages, 1, 'the 0.25 s message')
    expect(sub.messages[0]).toMatchObject({ topic: `${t}/frac`, payload: 'f', qos: 1 })
    clock.set(T0 + 999)
    await expectNothingFor(200, () => sub.messages.length > 1, () => `a 1 s message before its time: ${summary(sub.messages).join(', ')}`)
    clock.set(T0 + 1000)
    await waitForMessages(sub.messages, 3, 'the three delayed messages')
    await expectNothingFor(300, () => sub.messages.length > 3, () => summary(sub.messages).join(', '))
    const byTopic = new Map(sub.messages.map((m) => [m.topic, m]))
    expect(byTopic.get(`${t}/q0`)).toMatchObject({ payload: 'zero', qos: 0 })
    expect(byTopic.get(`${t}/q2`)).toMatchObject({ payload: 'two', qos: 2 })
  })

  it('delayedTopic() builds topics the broker parses to the same delay', () => {
    expect(delayedTopic(1000, 'a/b')).toBe('$delayed/1/a/b')
    expect(delayedTopic(250, 'a')).toBe('$delayed/0.250/a')
    expect(delayedTopic(1500.2, 'a')).toBe('$delayed/1.501/a')
    expect(delayedTopic(-5, 'a')).toBe('$delayed/0/a')
  })

  it('retains the target only once it fires; $delayed/ itself is not retained', async () => {
    const clock = new ManualClock(T0)
    const b = await broker({ clock })
    const t = `${uniqueTopic('ret')}/state`
    const pub = await publisher(b)
    await pub.publishAsync(`$delayed/0.3/${t}`, 'on', { qos: 1, retain: true })

    // Subscribed before it fires: no retained message yet, so the one it gets
    // is the live one at fire time, without the retain flag [MQTT-3.3.1-9].
    const early = await subscriber(b, t)
    await quietUntil(clock, 299, 'the delayed message (or a retained $delayed/ one)', early.messages)
    expect(b.broker.stats().delayed.fired, 'subscribed before the message fired').toBe(0)
    clock.set(T0 + 300)
    await waitForMessages(early.messages, 1, 'the delayed message')
    expect(early.messages[0]).toMatchObject({ topic: t, payload: 'on', qos: 1, retain: false })

    const late = await subscriber(b, t)
    await waitForMessages(late.messages, 1, 'the retained message')
    await expectNothingFor(300, () => late.messages.length > 1 || early.messages.length > 1, () => summary(late.messages).join(', '))
    expect(late.messages[0]).toMatchObject({ topic: t, payload: 'on', qos: 1, retain: true })
  })

  it('keeps publish order among messages with the same delay', async () => {
    const clock = new ManualClock(T0)
    const b = await broker({ clock })
    const t = uniqueTopic('order')
    const sub = await subscriber(b, `${t}/#`)
    const pub = await publisher(b)
    const n = 200
    // Pipelined: mqtt.js sends them in order without waiting for each PUBACK.
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publishAsync(`$delayed/0.5/${t}/n`, String(i), { qos: 1 })))
    // every one due at the same instant: only the publish order tells them apart
    expect(b.broker.stats().delayed).toMatchObject({ pending: n, nextDueAt: iso(T0 + 500) })
    clock.set(T0 + 500)
    await waitForMessages(sub.messages, n, 'every delayed message')
    await expectNothingFor(300, () => sub.messages.length > n, 'a duplicate')
    expect(sub.messages.map((m) => Number(m.payload))).toEqual(Array.from({ length: n }, (_, i) => i))
  })

  it('survives a graceful restart: a persistent subscriber and a new one each get it once, at its time', async () => {
    const clock = new ManualClock(T0)
    // restart() starts the new broker with the same options, so on the same clock
    const b = await broker({ clock })
    const t = uniqueTopic('restart')
    const before = await subscriber(b, `${t}/#`, { clientId: 'restart-sleeper', clean: false })
    const pub = await publisher(b)
    await pub.publishAsync(`$delayed/2/${t}/a`, 'later', { qos: 1 })
    await clients.closeAll()
    clock.set(T0 + 1000)

    await b.restart()
    expect(b.broker.stats().delayed.fired, 'restarted before it was due').toBe(0)
    // the stored backlog is counted after the broker listens
    await waitUntil(() => b.broker.stats().delayed.pending === 1, 'the stored message counted as pending')
    expect(b.broker.stats().delayed.nextDueAt).toBe(iso(T0 + 2000))
    const back = await clients.connect(b.url, { clientId: 'restart-sleeper', clean: false })
    const fresh = await subscriber(b, `${t}/#`)
    await quietUntil(clock, 1999, 'the delayed message', back.messages, fresh.messages)
    clock.set(T0 + 2000)
    await waitForMessages(back.messages, 1, 'the delayed message at the persistent subscriber')
    await waitForMessages(fresh.messages, 1, 'the delayed message at the new subscriber')
    await expectNothingFor(300, () => back.messages.length > 1 || fresh.messages.length > 1, 'a second copy')
    expect(before.messages).toEqual([])
    expect(summary(back.messages)).toEqual([`${t}/a=later`])
    expect(summary(fresh.messages)).toEqual([`${t}/a=later`])
    expect(b.broker.stats().delayed).toMatchObject({ pending: 0, fired: 1 })
  })

  it('publishes what fell due while the broker was down on the next start, earliest first, once', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'fleetq-delayed-'))
    dirs.push(dataDir)
    const clock = new ManualClock(T0)
    const first = await broker({ dataDir, clock })
    const t = uniqueTopic('down')
    await subscriber(first, `${t}/#`, { clientId: 'down-sleeper', clean: false })
    const pub = await publisher(first)
    // Published out of due order, so "earliest first" is not just "in publish order".
    const delays = [0.8, 0.4, 1.2, 0.6, 1, 0.5]
    await Promise.all(delays.map((s) => pub.publishAsync(`$delayed/${s}/${t}/d${s}`, String(s), { qos: 1 })))
    await clients.closeAll()
    await first.close()
    expect(first.broker.stats().delayed, 'closed before any was due').toMatchObject({ pending: delays.length, fired: 0 })

    // every message falls due while the broker is down
    clock.set(T0 + Math.max(...delays) * 1000 + 1)
    const second = await broker({ dataDir, clock })
    // Reconnect once the catch-up is done: this test is about what the catch-up
    // queues, not the race of a session resuming while messages are routed.
    await waitUntil(() => second.broker.stats().delayed.fired === delays.length, 'the catch-up')
    const back = await clients.connect(second.url, { clientId: 'down-sleeper', clean: false })
    await waitForMessages(back.messages, delays.length, 'every message due during the downtime')
    await expectNothingFor(400, () => back.messages.length > delays.length, () => `a duplicate: ${summary(back.messages).join(', ')}`)
    expect(back.messages.map((m) => Number(m.payload))).toEqual([...delays].sort((x, y) => x - y))
    expect(second.broker.stats().delayed).toMatchObject({ pending: 0, fired: delays.length })
  })

  it('refuses malformed delays and targets: acknowledged, dead-lettered with the reason, counted, never published', async () => {
    const b = await broker({ delayed: { maxDelaySeconds: 60 } })
    const t = uniqueTopic('bad')
    const target = await subscriber(b, `${t}/#`)
    const dead = await subscriber(b, DELAYED_DEAD_LETTER_TOPIC)
    const pub = await publisher(b, 'bad-delays')
    const cases: Array<[string, DelayedRefusal]> = [
      [`$delayed/abc/${t}/x`, 'delay-not-a-number'],
      [`$delayed/-1/${t}/x`, 'delay-not-a-number'],
      [`$delayed/1e3/${t}/x`, 'delay-not-a-number'],
      [`$delayed/1.2345/${t}/x`, 'delay-not-a-number'],
      [`$delayed/01/${t}/x`, 'delay-not-a-number'],
      [`$delayed//${t}/x`, 'delay-not-a-number'],
      ['$delayed/10', 'target-missing'],
      ['$delayed/10/', 'target-missing'],
      [`$delayed/99999999/${t}/x`, 'delay-too-long'],
      [`$delayed/61/${t}/x`, 'delay-too-long'],
      [`$delayed/60.001/${t}/x`, 'delay-too-long'],
      [`$delayed/1/$delayed/1/${t}/x`, 'target-invalid'],
      [`$delayed/1/$share/g/${t}/x`, 'target-invalid']
    ]
    // Every one is PUBACKed: a device must not resend a refused message forever.
    for (const [topic] of cases) await pub.publishAsync(topic, 'payload', { qos: 1 })
    // The bound itself is accepted.
    await pub.publishAsync(`$delayed/60/${t}/ok`, 'kept', { qos: 1 })
    expect(pub.connected).toBe(true)

    await waitForMessages(dead.messages, cases.length, 'a dead letter for each refusal')
    const letters = dead.messages.map((m) => JSON.parse(m.payload) as DelayedDeadLetter)
    expect(letters.map((l) => [l.topic, l.refusal])).toEqual(cases)
    for (const letter of letters) {
      expect(letter).toMatchObject({ reason: 'delay-invalid', clientId: 'bad-delays', payload: 'payload' })
      expect(letter.issues).toEqual([expect.objectContaining({ keyword: letter.refusal, message: expect.any(String) })])
    }
    expect(dead.messages.every((m) => m.topic === DELAYED_DEAD_LETTER_TOPIC && m.qos === 1)).toBe(true)

    const expected: Record<DelayedRefusal, number> = { 'delay-not-a-number': 6, 'delay-too-long': 3, 'target-missing': 2, 'target-invalid': 2, 'too-many-pending': 0 }
    expect(b.broker.stats().delayed).toMatchObject({ refused: expected, accepted: 1, pending: 1 })
    await expectNothingFor(300, () => target.messages.length > 0, () => `published a refused message: ${summary(target.messages).join(', ')}`)
    expect(pub.connected).toBe(true)
  })

  it('refuses beyond delayed.maxPending with too-many-pending, and accepts again once some have fired', async () => {
    const clock = new ManualClock(T0)
    const b = await broker({ delayed: { maxPending: 3 }, clock })
    const t = uniqueTopic('full')
    const target = await subscriber(b, `${t}/#`)
    const dead = await subscriber(b, DELAYED_DEAD_LETTER_TOPIC)
    const pub = await publisher(b)
    for (const n of [1, 2, 3, 4]) await pub.publishAsync(`$delayed/0.4/${t}/n${n}`, String(n), { qos: 1 })

    await waitForMessages(dead.messages, 1, 'the refusal')
    expect(JSON.parse(dead.messages[0]!.payload)).toMatchObject({ reason: 'delay-invalid', refusal: 'too-many-pending', topic: `$delayed/0.4/${t}/n4` })
    expect(b.broker.stats().delayed).toMatchObject({ pending: 3, accepted: 3, refused: { 'too-many-pending': 1 } })

    clock.set(T0 + 400)
    await waitForMessages(target.messages, 3, 'the three accepted messages')
    await waitUntil(() => b.broker.stats().delayed.pending === 0, 'room again')
    await pub.publishAsync(`$delayed/0.1/${t}/n5`, '5', { qos: 1 })
    clock.set(T0 + 500)
    await waitForMessages(target.messages, 4, 'the message sent once there was room')
    await expectNothingFor(300, () => target.messages.length > 4 || dead.messages.length > 1, 'the refused message after all')
    expect(summary(target.messages)).toEqual([`${t}/n1=1`, `${t}/n2=2`, `${t}/n3=3`, `${t}/n5=5`])
  })

  it('disconnects a client that delays a publish to $SYS/, as it would a direct one, and stores nothing', async () => {
    const clock = new ManualClock(T0)
    const b = await broker({ clock })
    const t = uniqueTopic('sys')
    const watcher = await subscriber(b, `$SYS/${t}/#`)
    const pub = await publisher(b)
    const closed = waitForEvent(pub, 'close')
    pub.publish(`$delayed/0.2/$SYS/${t}/x`, 'spoof', { qos: 1 }, () => undefined)
    await closed
    expect(b.broker.stats().delayed).toMatchObject({ pending: 0, accepted: 0, nextDueAt: null })
    // past its time: had it been stored, it would fire now
    clock.set(T0 + 200)
    await expectNothingFor(400, () => watcher.messages.length > 0, () => `a spoofed $SYS message: ${summary(watcher.messages).join(', ')}`)
    expect(b.broker.stats().delayed.fired).toBe(0)
  })

  it('refuses subscriptions to $delayed/ (SUBACK 0x80) and keeps the connection', async () => {
    const clock = new ManualClock(T0)
    const b = await broker({ clock })
    const t = uniqueTopic('sub')
    // A raw client: mqtt.js rejects the whole subscribe on a 0x80 and hides which filter it was.
    const peeker = await RawClient.connect(b.port, 'peeker')
    raws.push(peeker)
    expect(await peeker.subscribe('$delayed/#', 1)).toBe(128)
    expect(await peeker.subscribe('$share/g/$delayed/#', 1)).toBe(128)
    expect(await peeker.subscribe(`$delayed/1/${t}`, 0)).toBe(128)
    // still connected: a later subscribe is granted
    expect(await peeker.subscribe(`${t}/ok`, 1)).toBe(1)
    const pub = await publisher(b)
    await pub.publishAsync(`$delayed/0.2/${t}/ok`, 'x', { qos: 1 })
    clock.set(T0 + 200)
    await waitUntil(() => peeker.received.length >= 1, 'the fired message on the granted filter')
    await expectNothingFor(300, () => peeker.received.length > 1, 'the delayed publish itself on a refused filter')
    expect(peeker.received.map((m) => `${m.topic}=${m.payload}`)).toEqual([`${t}/ok=x`])
  })

  it('delivers 10,000 messages falling due at once, each exactly once', async () => {
    const clock = new ManualClock(T0)
    const b = await broker({ clock })
    const t = uniqueTopic('many')
    const sub = await subscriber(b, `${t}/#`)
    const pub = await publisher(b)
    const n = 10_000
    await Promise.all(Array.from({ length: n }, (_, i) => pub.publishAsync(`$delayed/3/${t}/n`, String(i), { qos: 1 })))
    // The clock stood still while they were published: all are due at the same instant.
    expect(sub.messages).toEqual([])
    expect(b.broker.stats().delayed).toMatchObject({ pending: n, fired: 0, nextDueAt: iso(T0 + 3000) })

    clock.set(T0 + 3000)
    await waitForMessages(sub.messages, n, 'every delayed message', 40_000)
    await expectNothingFor(300, () => sub.messages.length > n, 'a duplicate')
    expect(new Set(sub.messages.map((m) => m.payload)).size).toBe(n)
    expect(sub.messages.every((m) => m.qos === 1)).toBe(true)
    expect(b.broker.stats().delayed).toMatchObject({ pending: 0, accepted: n, fired: n })
  })

  // Aedes calls authorizePublish, where the delayed message is stored, before
  // its own QoS 2 duplicate check (aedes lib/handlers/publish.js): the hook
  // must recognise the resend itself.
  it('QoS 2: a PUBLISH retransmitted before PUBREL is stored once [MQTT-4.3.3-2]', async () => {
    const clock = new ManualClock(T0)
    const b = await broker({ clock })
    const t = uniqueTopic('q2dup')
    const sub = await subscriber(b, `${t}/#`, {}, 2)
    const socket = connect(b.port, '127.0.0.1')
    await once(socket, 'connect')
    const acks: Packet[] = []
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', (packet: Packet) => acks.push(packet))
    socket.on('data', (chunk) => parser.parse(chunk))
    socket.on('error', () => undefined)
    const send = (packet: Record<string, unknown>): void => { socket.write(mqttPacket.generate(packet as unknown as Packet)) }
    const got = async (count: number, what: string): Promise<void> => waitUntil(() => acks.length >= count, what)
    try {
      send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: `q2-${t}`, clean: true, keepalive: 60 })
      await got(1, 'CONNACK')
      const publish = { cmd: 'publish', topic: `$delayed/0.2/${t}/x`, payload: 'once', qos: 2, messageId: 7, retain: false }
      send({ ...publish, dup: false })
      await got(2, 'PUBREC')
      send({ ...publish, dup: true }) // the sender did not see the PUBREC
      await got(3, 'PUBREC of the retransmission')
      send({ cmd: 'pubrel', messageId: 7 })
      await got(4, 'PUBCOMP')
      expect(b.broker.stats().delayed).toMatchObject({ accepted: 1, pending: 1 })
      clock.set(T0 + 200)
      await waitForMessages(sub.messages, 1, 'the delayed message')
      await expectNothingFor(300, () => sub.messages.length > 1, () => `a second copy: ${summary(sub.messages).join(', ')}`)
      expect(b.broker.stats().delayed.accepted).toBe(1)
    } finally {
      socket.destroy()
    }
  })

  it('delayed tasks pass the task gate when submitted: invalid ones dead-lettered at once, valid bare payloads wrapped and sent at their time', async () => {
    const clock = new ManualClock(T0)
    const b = await broker({ clock })
    const worker = await subscriber(b, '$share/thumbnail/tasks/thumbnail')
    const dead = await subscriber(b, '$fleetq/dead/thumbnail')
    const device = await publisher(b, 'delayed-device')

    await device.publishAsync('$delayed/0.5/tasks/thumbnail', JSON.stringify({ imageUrl: 'https://example.com/a.png', width: 10 }), { qos: 1 })
    await device.publishAsync('$delayed/0.5/tasks/thumbnail', JSON.stringify(thumb), { qos: 1 })
    // the clock has not moved: the dead letter came at submission, not at its time
    await waitForMessages(dead.messages, 1, 'the dead letter')
    expect(worker.messages).toEqual([])
    expect(JSON.parse(dead.messages[0]!.payload)).toMatchObject({
      reason: 'validation', taskType: 'thumbnail', clientId: 'delayed-device', issues: [expect.objectContaining({ keyword: 'required' })]
    })
    expect(b.broker.stats().delayed).toMatchObject({ accepted: 1, pending: 1 })

    await quietUntil(clock, 499, 'the delayed task', worker.messages)
    clock.set(T0 + 500)
    await waitForMessages(worker.messages, 1, 'the delayed task')
    const envelope = JSON.parse(worker.messages[0]!.payload) as Record<string, unknown>
    expect(envelope).toMatchObject({ type: 'thumbnail', producer: 'delayed-device', payload: thumb })
    expect(typeof envelope['id']).toBe('string')
    // the invalid one was due at the same time: it would be here by now
    await expectNothingFor(300, () => worker.messages.length > 1 || dead.messages.length > 1, () => summary(worker.messages).join(', '))
  })
})
