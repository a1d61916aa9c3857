import { readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { IClientOptions, MqttClient } from 'mqtt'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createBroker, type BrokerOptions } from '../broker/index.js'
import { buildEnvelope } from '../protocol/envelope.js'
import { ConfigError, ErrorCodes } from '../protocol/errors.js'
import { Clients, summary, waitForEvent, waitForMessages, waitUntil, type TestClient } from './helpers/mqtt-helpers.js'
import { subscribeGranted, writeAcl, writeUsers } from './helpers/security-fixtures.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { tempRoot } from './helpers/temp-root.js'

/*
 * The ACL matrix (docs/security.md): an ACL file in Mosquitto's format, the
 * rules fleetq keeps whatever the file says (own results, the admin role's
 * topics, `$delayed/`), and the receive check on every delivery. Real
 * brokers, real mqtt.js clients; what arrives, what is refused, and what the
 * SUBACK says.
 */

const USERS = ['dev1', 'dev2', 'worker', 'ops'] as const
type User = (typeof USERS)[number]
const password = (user: string): string => `${user}-pw`

/** Mosquitto's format: `topic` lines under `user` are that user's, `pattern` lines everyone's. */
const ACL = [
  '# anonymous clients: no topic rules (the patterns below still apply to them, %c only)',
  'user dev1',
  'topic write tasks/#',
  // A filter dev1 may use (fleet/dev1/#, from the pattern) covers these topics in part.
  'topic deny fleet/dev1/private/#',
  'user dev2',
  'topic write tasks/#',
  'user worker',
  'topic read tasks/#',
  'topic write $fleetq/results/#',
  'topic readwrite $fleetq/dead/#',
  'user ops',
  'topic readwrite #',
  'pattern readwrite fleet/%c/#',
  'pattern read users/%u/#'
]

const THUMBNAIL = { imageUrl: 'https://example.com/a.png', width: 64, height: 64 }

const root = tempRoot('fleetq-acl-')
const clients = new Clients()
const brokers: TestBroker[] = []
let usersFile: string
let aclFile: string

beforeAll(async () => {
  usersFile = await writeUsers(join(root.path, 'users'), Object.fromEntries(USERS.map((u) => [u, password(u)])))
  aclFile = await writeAcl(join(root.path, 'acl'), ACL)
})

afterEach(async () => {
  await clients.closeAll()
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})

async function start (options: BrokerOptions): Promise<TestBroker> {
  const b = await startBroker(options)
  brokers.push(b)
  return b
}

/** A broker with the users file, `acl` (the matrix's by default) and ops as admin. */
function secured (acl = aclFile, options: BrokerOptions = {}): Promise<TestBroker> {
  return start({ ...options, auth: { usersFile, aclFile: acl, admins: ['ops'], ...options.auth } })
}

/** Connects as `user` with the right password; the client id is the user name unless given. */
function login (b: TestBroker, user: User, options: IClientOptions = {}): Promise<TestClient> {
  return clients.connect(b.url, { username: user, password: password(user), clientId: user, ...options })
}

/**
 * Publishes what the broker refuses: it ends the connection without a
 * PUBACK (MQTT 3.1.1 has no negative PUBACK). Resolves once closed.
 */
async function publishRefused (client: MqttClient, topic: string, payload: string | Buffer = 'refused'): Promise<void> {
  let acked = false
  const closed = waitForEvent(client, 'close')
  client.publish(topic, payload, { qos: 1 }, (err) => { if (err === undefined || err === null) acked = true })
  await closed
  expect(acked, `PUBACK for ${topic}`).toBe(false)
}

/** Ends the connection without a DISCONNECT, as a device losing power does: its will goes out. */
async function dropConnection (client: MqttClient): Promise<void> {
  const closed = waitForEvent(client, 'close')
  client.stream.destroy()
  await closed
}

/** A fresh copy of an ACL file, for a test that rewrites it. */
async function aclCopy (lines: readonly string[]): Promise<string> {
  return writeAcl(join(await root.freshDir('acl'), 'acl'), lines)
}

describe('ACL file: publish', () => {
  it('lets dev1 publish under fleet/{its client id}/ (%c); fleet/dev2/ disconnects it and reaches nobody', async () => {
    const b = await secured()
    const watcher = await login(b, 'ops')
    expect(await subscribeGranted(watcher.client, ['fleet/#'])).toEqual([1])

    const dev1 = await login(b, 'dev1')
    await dev1.client.publishAsync('fleet/dev1/temp', '21.5', { qos: 1 })
    await publishRefused(dev1.client, 'fleet/dev2/temp', 'spoofed')
    expect(b.broker.stats().access.publishDenied).toBe(1)

    // dev2 publishes after the refused message: had it been routed, the watcher would have it first.
    const dev2 = await login(b, 'dev2')
    await dev2.client.publishAsync('fleet/dev2/temp', '19.0', { qos: 1 })
    await waitForMessages(watcher.messages, 2, 'dev1\'s and dev2\'s own readings')
    expect(summary(watcher.messages)).toEqual(['fleet/dev1/temp=21.5', 'fleet/dev2/temp=19.0'])
  })

  it('%c is the client id, %u the user name: dev1 as client "dev1-phone" reads users/dev1/, writes fleet/dev1-phone/, not fleet/dev1/', async () => {
    const b = await secured()
    const phone = await login(b, 'dev1', { clientId: 'dev1-phone' })
    expect(await subscribeGranted(phone.client, ['users/dev1/#', 'users/dev2/#', 'fleet/dev1-phone/#', 'fleet/dev1/#'])).toEqual([1, 128, 1, 128])

    const ops = await login(b, 'ops')
    await ops.client.publishAsync('users/dev2/inbox', 'for dev2', { qos: 1 })
    await ops.client.publishAsync('users/dev1/inbox', 'for dev1', { qos: 1 })
    await phone.client.publishAsync('fleet/dev1-phone/state', 'on', { qos: 1 })
    await waitForMessages(phone.messages, 2, 'its inbox message and its own state')
    expect(summary(phone.messages)).toEqual(['users/dev1/inbox=for dev1', 'fleet/dev1-phone/state=on'])

    // `pattern read`: reading its inbox is not writing to it.
    await publishRefused(phone.client, 'users/dev1/inbox', 'forged')
    const again = await login(b, 'dev1', { clientId: 'dev1-phone-2' })
    await publishRefused(again.client, 'fleet/dev1/state', 'not its client id')
    expect(b.broker.stats().access.publishDenied).toBe(2)
  })

  it('a client id with +, # or / gains nothing from a %c pattern (it would widen it)', async () => {
    const b = await secured()
    for (const clientId of ['+', '#', 'dev2/x']) {
      const c = await login(b, 'dev1', { clientId })
      // `fleet/%c/#` must not become `fleet/+/#`, `fleet/#/#` or `fleet/dev2/x/#`.
      expect(await subscribeGranted(c.client, ['fleet/+/#', 'fleet/dev2/#', 'fleet/dev2/x/#', 'users/dev1/#']), clientId).toEqual([128, 128, 128, 1])
      await publishRefused(c.client, 'fleet/dev2/x/y')
    }
  })

  it('a CONNECT whose will the client may not write is refused (0x05), as Mosquitto does; one it may write is published', async () => {
    const b = await secured()
    const watcher = await login(b, 'ops')
    expect(await subscribeGranted(watcher.client, ['fleet/#'])).toEqual([1])
    const will = (topic: string): IClientOptions => ({ will: { topic, payload: Buffer.from('gone'), qos: 1, retain: false } })
    // Checked at CONNECT: a will can be published long after, by a broker
    // restarted since (kill -9), which no longer knows who left it.
    await expect(login(b, 'dev1', { clientId: 'dev1', ...will('fleet/dev2/status') })).rejects.toMatchObject({ code: 5 })
    await waitUntil(() => b.broker.stats().access.publishDenied === 1, 'the will refused')
    const honest = await login(b, 'dev1', { clientId: 'dev1', ...will('fleet/dev1/status') })
    await dropConnection(honest.client)
    await waitForMessages(watcher.messages, 1, 'the allowed will')
    expect(summary(watcher.messages)).toEqual(['fleet/dev1/status=gone'])
  })
})

describe('ACL file: subscribe', () => {
  it('one SUBSCRIBE with an allowed and a denied filter gets [granted, 0x80]; the connection stays up and the allowed one receives', async () => {
    const b = await secured()
    const dev1 = await login(b, 'dev1')
    expect(await subscribeGranted(dev1.client, ['fleet/dev1/#', 'fleet/dev2/#'])).toEqual([1, 128])
    // A deny rule covering the whole filter refuses it, though the pattern allows fleet/dev1/#.
    expect(await subscribeGranted(dev1.client, ['fleet/dev1/private/#', 'fleet/dev1/private/key', 'fleet/+/private/#'])).toEqual([128, 128, 128])
    expect(b.broker.stats().access.subscribeDenied).toBe(4)

    const ops = await login(b, 'ops')
    await ops.client.publishAsync('fleet/dev2/cmd', 'not for dev1', { qos: 1 })
    await ops.client.publishAsync('fleet/dev1/cmd', 'reboot', { qos: 1 })
    await waitForMessages(dev1.messages, 1, 'the message on the granted filter')
    expect(summary(dev1.messages)).toEqual(['fleet/dev1/cmd=reboot'])
    expect(dev1.client.connected).toBe(true)
  })

  it('a persistent session never keeps a refused filter: not on reconnect, not after a broker restart', async () => {
    const b = await secured()
    const queued = (): number => b.broker.stats().queuedMessages['dev1'] ?? 0
    const first = await login(b, 'dev1', { clean: false })
    expect(await subscribeGranted(first.client, ['fleet/dev1/#', 'fleet/dev2/#'])).toEqual([1, 128])
    await first.client.endAsync()

    const ops = await login(b, 'ops')
    // The refused filter's message first: had the filter been stored, it would be queued before the other.
    await ops.client.publishAsync('fleet/dev2/cmd', 'denied-1', { qos: 1 })
    await ops.client.publishAsync('fleet/dev1/cmd', 'allowed-1', { qos: 1 })
    await waitUntil(() => queued() >= 1, 'the allowed message queued for dev1')
    expect(queued()).toBe(1)

    const back = await login(b, 'dev1', { clean: false })
    expect(back.connack.sessionPresent).toBe(true)
    await waitForMessages(back.messages, 1, 'the queued message')
    expect(summary(back.messages)).toEqual(['fleet/dev1/cmd=allowed-1'])
    // Nothing was withheld at delivery, and the restored subscriptions were all allowed: the refused one was never stored.
    expect(b.broker.stats().access).toMatchObject({ subscribeDenied: 1, receiveDenied: 0 })
    await waitUntil(() => queued() === 0, 'the queue emptied by the PUBACK')
    await back.client.endAsync()

    await b.restart()
    const ops2 = await login(b, 'ops')
    await ops2.client.publishAsync('fleet/dev2/cmd', 'denied-2', { qos: 1 })
    await ops2.client.publishAsync('fleet/dev1/cmd', 'allowed-2', { qos: 1 })
    await waitUntil(() => queued() >= 1, 'the allowed message queued after the restart')
    expect(queued()).toBe(1)
    const restored = await login(b, 'dev1', { clean: false })
    expect(restored.connack.sessionPresent).toBe(true)
    await waitForMessages(restored.messages, 1, 'the message queued after the restart')
    expect(summary(restored.messages)).toEqual(['fleet/dev1/cmd=allowed-2'])
    expect(b.broker.stats().access).toEqual({ publishDenied: 0, subscribeDenied: 0, receiveDenied: 0 })
  })

  it('withholds a retained message the client may not read, though its filter may be used (receive check on delivery)', async () => {
    const b = await secured()
    await b.broker.publish({ topic: 'fleet/dev1/private/key', payload: Buffer.from('s3cret'), qos: 1, retain: true })
    await b.broker.publish({ topic: 'fleet/dev1/status', payload: Buffer.from('online'), qos: 1, retain: true })

    const dev1 = await login(b, 'dev1')
    // The deny rule covers fleet/dev1/# in part only: granted, and checked message by message.
    expect(await subscribeGranted(dev1.client, ['fleet/dev1/#'])).toEqual([1])
    await waitForMessages(dev1.messages, 1, 'the readable retained message')
    await waitUntil(() => b.broker.stats().access.receiveDenied === 1, 'the private retained message withheld')
    expect(summary(dev1.messages)).toEqual(['fleet/dev1/status=online'])

    // Live messages too.
    const ops = await login(b, 'ops')
    await ops.client.publishAsync('fleet/dev1/private/key', 's3cret-2', { qos: 1 })
    await ops.client.publishAsync('fleet/dev1/cmd', 'marker', { qos: 1 })
    await waitForMessages(dev1.messages, 2, 'the marker')
    expect(summary(dev1.messages)).toEqual(['fleet/dev1/status=online', 'fleet/dev1/cmd=marker'])
    expect(b.broker.stats().access.receiveDenied).toBe(2)

    // The retained message is there for a client that may read it.
    expect(await subscribeGranted(ops.client, ['fleet/dev1/private/#'])).toEqual([1])
    await waitForMessages(ops.messages, 1, 'the private retained message at ops')
    expect(summary(ops.messages)).toEqual(['fleet/dev1/private/key=s3cret'])
  })
})

describe('ACL file: shared groups, $delayed/, results and admin topics', () => {
  it('$share/g/tasks/thumbnail is granted to worker, refused to dev1; a group member gets only what it may read', async () => {
    const b = await secured()
    const worker = await login(b, 'worker')
    expect(await subscribeGranted(worker.client, ['$share/g/tasks/thumbnail'])).toEqual([1])
    const dev1 = await login(b, 'dev1')
    expect(await subscribeGranted(dev1.client, ['$share/g/tasks/thumbnail', '$share/audit/fleet/dev1/#'])).toEqual([128, 1])
    await dev1.client.publishAsync('tasks/thumbnail', JSON.stringify(THUMBNAIL), { qos: 1 })
    await waitForMessages(worker.messages, 1, 'the task at the worker')
    expect(JSON.parse(worker.messages[0]!.payload)).toMatchObject({ type: 'thumbnail', producer: 'dev1', payload: THUMBNAIL })

    // dev1 is the only member of audit/fleet/dev1/#: the private message waits for a member that may read it.
    const ops = await login(b, 'ops')
    await ops.client.publishAsync('fleet/dev1/private/p1', 'p1', { qos: 1 })
    await ops.client.publishAsync('fleet/dev1/open/o1', 'o1', { qos: 1 })
    await waitForMessages(dev1.messages, 1, 'the readable group message')
    const audit = (): { depth: number } | undefined => b.broker.stats().sharedGroups.find((g) => g.key === 'audit/fleet/dev1/#')
    await waitUntil(() => audit()?.depth === 1, 'the private message waiting in the group')
    expect(summary(dev1.messages)).toEqual(['fleet/dev1/open/o1=o1'])

    // A member that may read it takes it.
    const opsMessages = ops.messages
    expect(await subscribeGranted(ops.client, ['$share/audit/fleet/dev1/#'])).toEqual([1])
    await waitForMessages(opsMessages, 1, 'the private message at ops')
    expect(summary(opsMessages)).toEqual(['fleet/dev1/private/p1=p1'])
    await waitUntil(() => audit()?.depth === 0, 'the group emptied')
    expect(summary(dev1.messages)).toEqual(['fleet/dev1/open/o1=o1'])
  })

  it('$delayed/{s}/{topic}: the target topic is checked; subscribing to $delayed/ is always refused', async () => {
    const b = await secured()
    const watcher = await login(b, 'ops')
    expect(await subscribeGranted(watcher.client, ['fleet/#'])).toEqual([1])
    const dev1 = await login(b, 'dev1')
    await dev1.client.publishAsync('$delayed/2/fleet/dev1/later', 'later', { qos: 1 })
    expect(b.broker.stats().delayed.pending).toBe(1)
    await publishRefused(dev1.client, '$delayed/2/fleet/dev2/later', 'spoofed')
    // Refused before it was stored: only the allowed one waits.
    expect(b.broker.stats().delayed.pending).toBe(1)
    expect(b.broker.stats().access.publishDenied).toBe(1)
    await waitForMessages(watcher.messages, 1, 'the delayed message at its time')
    await waitUntil(() => b.broker.stats().delayed.pending === 0, 'nothing left waiting')
    expect(summary(watcher.messages)).toEqual(['fleet/dev1/later=later'])

    const filters = ['$delayed/#', '$delayed/1/fleet/dev1/later', '$delayed/+/fleet/dev1/#', '$share/g/$delayed/#']
    const dev2 = await login(b, 'dev2')
    expect(await subscribeGranted(dev2.client, filters)).toEqual([128, 128, 128, 128])
    expect(await subscribeGranted(watcher.client, filters), 'even the admin').toEqual([128, 128, 128, 128])
  })

  it('results: a client reads its own with no rule for it; nobody, not even the admin, subscribes to others\' or across clients', async () => {
    const b = await secured()
    const dev1 = await login(b, 'dev1')
    expect(await subscribeGranted(dev1.client, [
      '$fleetq/results/dev1/+', '$fleetq/replies/dev1/+',
      '$fleetq/results/dev2/+', '$fleetq/results/+/+', '$fleetq/results/#', '$fleetq/#', '$fleetq/+/dev2/+', '$fleetq/replies/dev2/+'
    ])).toEqual([1, 1, 128, 128, 128, 128, 128, 128])
    const ops = await login(b, 'ops')
    expect(await subscribeGranted(ops.client, ['$fleetq/results/ops/+', '$fleetq/results/dev1/+', '$fleetq/results/+/+', '$fleetq/results/#', '$fleetq/#', '#']))
      .toEqual([1, 128, 128, 128, 128, 1])
    const dev2 = await login(b, 'dev2')
    expect(await subscribeGranted(dev2.client, ['$fleetq/results/dev2/+'])).toEqual([1])

    // The worker writes results for anyone; each producer reads only its own.
    const worker = await login(b, 'worker')
    await worker.client.publishAsync('$fleetq/results/dev2/t2', 'result for dev2', { qos: 1 })
    await worker.client.publishAsync('$fleetq/results/dev1/t1', 'result for dev1', { qos: 1 })
    await waitForMessages(dev1.messages, 1, 'dev1\'s result')
    await waitForMessages(dev2.messages, 1, 'dev2\'s result')
    expect(summary(dev1.messages)).toEqual(['$fleetq/results/dev1/t1=result for dev1'])
    expect(summary(dev2.messages)).toEqual(['$fleetq/results/dev2/t2=result for dev2'])
    // ops's `#` does not reach `$` topics [MQTT-4.7.2-1].
    expect(ops.messages).toEqual([])
  })

  it('$SYS/# and $fleetq/schedules/request are the admin\'s: refused to dev1 and worker; a schedule request from dev1 disconnects it, ops gets a reply', async () => {
    const b = await secured()
    const adminFilters = ['$SYS/#', '$fleetq/schedules/request', '$fleetq/schedules/#', '$fleetq/admin/#']
    for (const user of ['dev1', 'worker'] as const) {
      const c = await login(b, user)
      expect(await subscribeGranted(c.client, adminFilters), user).toEqual([128, 128, 128, 128])
    }
    const ops = await login(b, 'ops')
    expect(await subscribeGranted(ops.client, [...adminFilters, '$fleetq/replies/ops/+'])).toEqual([1, 1, 1, 1, 1])

    const dev1 = await login(b, 'dev1', { clientId: 'dev1-admin-attempt' })
    const upsert = { id: 'r1', op: 'upsert', schedule: { name: 'by-dev1', cron: '0 0 1 1 *', topic: 'fleet/dev1/new-year', payload: 'x' } }
    await publishRefused(dev1.client, '$fleetq/schedules/request', JSON.stringify(upsert))

    await ops.client.publishAsync('$fleetq/schedules/request', JSON.stringify({ id: 'r2', op: 'list' }), { qos: 1 })
    const replies = ops.messages
    await waitUntil(() => replies.some((m) => m.topic === '$fleetq/replies/ops/r2'), 'the reply to ops')
    const reply = JSON.parse(replies.find((m) => m.topic === '$fleetq/replies/ops/r2')!.payload) as unknown
    // dev1's upsert never ran.
    expect(reply).toEqual({ id: 'r2', ok: true, result: [] })
    expect(b.broker.schedules.list()).toEqual([])
  })

  it('task gate: an envelope naming another producer (first attempt) or another\'s result topic is dead-lettered; its own goes to the worker', async () => {
    const b = await secured()
    const worker = await login(b, 'worker')
    expect(await subscribeGranted(worker.client, ['$share/g/tasks/thumbnail', '$fleetq/dead/thumbnail'])).toEqual([1, 1])
    const dev1 = await login(b, 'dev1')
    const forgedProducer = buildEnvelope({ type: 'thumbnail', payload: THUMBNAIL, producer: 'someone-else' })
    const forgedReplyTo = { ...buildEnvelope({ type: 'thumbnail', payload: THUMBNAIL, producer: 'dev1' }), replyTo: '$fleetq/results/someone-else/x' }
    const own = buildEnvelope({ type: 'thumbnail', payload: THUMBNAIL, producer: 'dev1' })
    for (const envelope of [forgedProducer, forgedReplyTo, own]) await dev1.client.publishAsync('tasks/thumbnail', JSON.stringify(envelope), { qos: 1 })

    await waitForMessages(worker.messages, 3, 'two dead letters and one task')
    const dead = worker.messages.filter((m) => m.topic === '$fleetq/dead/thumbnail')
      .map((m) => JSON.parse(m.payload) as { reason: string, clientId: string, issues: Array<{ keyword: string, path: string }> })
    expect(dead.map((d) => [d.reason, d.clientId, d.issues.map((i) => `${i.keyword} ${i.path}`)])).toEqual([
      ['validation', 'dev1', ['producer /producer']],
      ['validation', 'dev1', ['replyTo /replyTo']]
    ])
    const tasks = worker.messages.filter((m) => m.topic === 'tasks/thumbnail').map((m) => JSON.parse(m.payload) as { id: string, producer: string })
    expect(tasks).toEqual([expect.objectContaining({ id: own.id, producer: 'dev1', replyTo: own.replyTo })])

    // A retry (attempt 2) is published by whoever ran it and keeps its producer, but not with another's result topic.
    const ops = await login(b, 'ops')
    await ops.client.publishAsync('tasks/thumbnail', JSON.stringify({ ...own, attempt: 2, replyTo: '$fleetq/results/ops/x' }), { qos: 1 })
    await ops.client.publishAsync('tasks/thumbnail', JSON.stringify({ ...own, attempt: 2 }), { qos: 1 })
    await waitForMessages(worker.messages, 5, 'the retries')
    const retries = worker.messages.slice(3)
    expect(retries.filter((m) => m.topic === '$fleetq/dead/thumbnail').map((m) => JSON.parse(m.payload) as unknown))
      .toEqual([expect.objectContaining({ clientId: 'ops', issues: [expect.objectContaining({ keyword: 'replyTo' })] })])
    expect(retries.filter((m) => m.topic === 'tasks/thumbnail').map((m) => JSON.parse(m.payload) as unknown))
      .toEqual([expect.objectContaining({ id: own.id, attempt: 2, producer: 'dev1' })])
    expect(b.broker.stats().tasks).toMatchObject({ accepted: 2, invalid: 3 })
  })

  it('a client id with a / cannot steer a result into another client\'s result topics', async () => {
    const b = await secured()
    const producer = await login(b, 'dev1')
    expect(await subscribeGranted(producer.client, ['$fleetq/results/dev1/#'])).toEqual([1])
    const worker = await login(b, 'worker')
    expect(await subscribeGranted(worker.client, ['$share/g/tasks/thumbnail', '$fleetq/dead/thumbnail'])).toEqual([1, 1])
    // dev2, as client "dev1/x": its own result topics would be $fleetq/results/dev1/x/..., inside dev1's.
    const attacker = await login(b, 'dev2', { clientId: 'dev1/x' })
    const envelope = { ...buildEnvelope({ type: 'thumbnail', payload: THUMBNAIL, producer: 'dev1/x', replyTo: false }), replyTo: '$fleetq/results/dev1/x/forged' }
    await attacker.client.publishAsync('tasks/thumbnail', JSON.stringify(envelope), { qos: 1 })
    await waitForMessages(worker.messages, 1, 'the task or its dead letter')
    // The worker answers on the task's replyTo, as client/'s Worker does; then a genuine result for dev1.
    const task = worker.messages.find((m) => m.topic === 'tasks/thumbnail')
    const replyTo = task === undefined ? undefined : (JSON.parse(task.payload) as { replyTo?: string }).replyTo
    if (replyTo !== undefined) await worker.client.publishAsync(replyTo, 'forged result', { qos: 1 })
    await worker.client.publishAsync('$fleetq/results/dev1/t1', 'real result', { qos: 1 })
    await waitForMessages(producer.messages, 1, 'the genuine result')
    expect(summary(producer.messages)).toEqual(['$fleetq/results/dev1/t1=real result'])
  })
})

describe('ACL file: reloads, errors, counters and the open broker', () => {
  it('reloadAuth(): a newly granted topic works at once, a revoked one stops reaching a subscribed client; a bad file keeps the old rules', async () => {
    // A second `user dev1` section adds to the first, as in Mosquitto.
    const acl = await aclCopy([...ACL, 'user dev1', 'topic read alerts/#'])
    const b = await secured(acl)
    const dev1 = await login(b, 'dev1')
    expect(await subscribeGranted(dev1.client, ['alerts/#', 'news/#'])).toEqual([1, 128])
    const ops = await login(b, 'ops')
    await ops.client.publishAsync('alerts/fire', 'a1', { qos: 1 })
    await waitForMessages(dev1.messages, 1, 'the first alert')

    await writeAcl(acl, [...ACL, 'user dev1', 'topic read news/#'])
    await b.broker.reloadAuth()
    expect(await subscribeGranted(dev1.client, ['news/#'])).toEqual([1])
    await ops.client.publishAsync('alerts/fire', 'a2', { qos: 1 })
    await ops.client.publishAsync('news/today', 'n1', { qos: 1 })
    await waitForMessages(dev1.messages, 2, 'the news')
    // Still subscribed to alerts/#, but each delivery is checked against the new rules.
    expect(summary(dev1.messages)).toEqual(['alerts/fire=a1', 'news/today=n1'])
    expect(b.broker.stats().access.receiveDenied).toBe(1)

    await writeFile(acl, 'user dev1\ntopic read alerts/#\ntopic sometimes news/#\n')
    const err = await b.broker.reloadAuth().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigError)
    expect(err).toMatchObject({ code: ErrorCodes.CONFIG_INVALID, key: 'auth.aclFile', message: expect.stringContaining('line 3') as unknown })
    // The rules of the last good file stay: news yes, alerts no.
    await ops.client.publishAsync('alerts/fire', 'a3', { qos: 1 })
    await ops.client.publishAsync('news/today', 'n2', { qos: 1 })
    await waitForMessages(dev1.messages, 3, 'more news')
    expect(summary(dev1.messages)).toEqual(['alerts/fire=a1', 'news/today=n1', 'news/today=n2'])
    expect(await subscribeGranted(dev1.client, ['alerts/#'])).toEqual([128])
  })

  it('a filter a reload revokes is dropped from a persistent session when it reconnects, for good', async () => {
    const acl = await aclCopy([...ACL, 'user dev1', 'topic read alerts/#'])
    const b = await secured(acl)
    const queued = (): number => b.broker.stats().queuedMessages['dev1'] ?? 0
    const first = await login(b, 'dev1', { clean: false })
    expect(await subscribeGranted(first.client, ['alerts/#', 'fleet/dev1/#'])).toEqual([1, 1])
    await first.client.endAsync()

    await writeAcl(acl, ACL)
    await b.broker.reloadAuth()
    const revoked = await login(b, 'dev1', { clean: false })
    // The restored alerts/# is checked again, refused, and removed from the session.
    await waitUntil(() => b.broker.stats().access.subscribeDenied === 1, 'the restored filter refused')
    await revoked.client.endAsync()

    // Granted again: the session no longer holds the filter, so nothing is queued for it.
    await writeAcl(acl, [...ACL, 'user dev1', 'topic read alerts/#'])
    await b.broker.reloadAuth()
    const ops = await login(b, 'ops')
    await ops.client.publishAsync('alerts/fire', 'a1', { qos: 1 })
    await ops.client.publishAsync('fleet/dev1/cmd', 'c1', { qos: 1 })
    await waitUntil(() => queued() >= 1, 'the fleet message queued')
    expect(queued()).toBe(1)
    const back = await login(b, 'dev1', { clean: false })
    await waitForMessages(back.messages, 1, 'the queued fleet message')
    expect(summary(back.messages)).toEqual(['fleet/dev1/cmd=c1'])
  })

  it('refuses to start with an ACL file it cannot use, naming the file and the line, before opening the store', async () => {
    const bad = await aclCopy(['# fleet ACL', 'user dev1', 'topic read fleet/#/x'])
    const dataDir = await root.freshDir('data')
    const err = await createBroker({ port: 0, logLevel: 'silent', dataDir, auth: { usersFile, aclFile: bad } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ConfigError)
    expect(err).toMatchObject({ code: ErrorCodes.CONFIG_INVALID, key: 'auth.aclFile' })
    expect((err as Error).message).toContain(`${bad}: line 3`)
    expect((err as Error).message).toContain('fleet/#/x')
    expect(await readdir(dataDir)).toEqual([])

    const missing = join(root.path, 'no-such-acl')
    await expect(createBroker({ port: 0, logLevel: 'silent', persistence: 'memory', auth: { usersFile, aclFile: missing } }))
      .rejects.toMatchObject({ code: ErrorCodes.CONFIG_INVALID, key: 'auth.aclFile', message: expect.stringContaining(missing) as unknown })
  })

  it('counts refusals in stats().access: publishDenied, subscribeDenied, receiveDenied', async () => {
    const b = await secured()
    expect(b.broker.stats().access).toEqual({ publishDenied: 0, subscribeDenied: 0, receiveDenied: 0 })
    const dev1 = await login(b, 'dev1')
    expect(await subscribeGranted(dev1.client, ['fleet/dev1/#', 'fleet/dev2/#', '$SYS/#'])).toEqual([1, 128, 128])
    expect(b.broker.stats().access).toEqual({ publishDenied: 0, subscribeDenied: 2, receiveDenied: 0 })
    await b.broker.publish({ topic: 'fleet/dev1/private/x', payload: Buffer.from('x'), qos: 1 })
    await b.broker.publish({ topic: 'fleet/dev1/marker', payload: Buffer.from('m'), qos: 1 })
    await waitForMessages(dev1.messages, 1, 'the marker')
    expect(b.broker.stats().access).toEqual({ publishDenied: 0, subscribeDenied: 2, receiveDenied: 1 })
    await publishRefused(dev1.client, 'fleet/dev2/x')
    expect(b.broker.stats().access).toEqual({ publishDenied: 1, subscribeDenied: 2, receiveDenied: 1 })
  })

  it('anonymous clients (allowAnonymous) get the rules before any user line and the %c patterns, not a user\'s', async () => {
    const acl = await aclCopy(['topic read public/#', ...ACL])
    const b = await secured(acl, { auth: { allowAnonymous: true } })
    const anon = await clients.connect(b.url, { clientId: 'anon-1' })
    expect(await subscribeGranted(anon.client, ['public/#', 'fleet/anon-1/#', 'users/anon-1/#', 'tasks/#', '$SYS/#'])).toEqual([1, 1, 128, 128, 128])
    await publishRefused(anon.client, 'public/x')
    // The anonymous section is not a logged-in user's.
    const dev1 = await login(b, 'dev1')
    expect(await subscribeGranted(dev1.client, ['public/#'])).toEqual([128])
  })

  it('a user name no users file checked is no identity: neither its ACL section nor the admin role apply', async () => {
    // An ACL file but no users file: the broker is secured, anyone may connect.
    const b = await start({ auth: { aclFile, admins: ['ops'] } })
    const fake = await clients.connect(b.url, { clientId: 'fake-ops', username: 'ops', password: 'anything' })
    expect(await subscribeGranted(fake.client, ['#', '$SYS/#', 'users/ops/#', 'fleet/fake-ops/#'])).toEqual([128, 128, 128, 1])
    await publishRefused(fake.client, 'fleet/dev1/cmd')
  })

  it('without a users file or an ACL file: $SYS/# and schedules are open, others\' results still refused', async () => {
    const b = await start({})
    const c = await clients.connect(b.url, { clientId: 'open-1' })
    expect(await subscribeGranted(c.client, [
      '$SYS/#', '$fleetq/schedules/request', 'fleet/#', '$fleetq/results/open-1/+',
      '$fleetq/results/other/+', '$fleetq/results/+/+', '$fleetq/#', '$delayed/#'
    ])).toEqual([1, 1, 1, 1, 128, 128, 128, 128])
    // `$delayed/#` is refused after the access check, by the delayed-message rules: not counted there.
    expect(b.broker.stats().access.subscribeDenied).toBe(3)
  })
})
