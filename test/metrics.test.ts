import { readFile } from 'node:fs/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { connect, createWorker, type Client, type Worker } from '../client/index.js'
import { Clients, waitForMessages, waitUntil } from './helpers/mqtt-helpers.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { testSchemas } from './helpers/task-schemas.js'

/*
 * The operations listener (docs/operations.md): health, readiness and
 * Prometheus metrics over real HTTP, moving with real MQTT traffic.
 */

const brokers: TestBroker[] = []
const clients = new Clients()
const workers: Worker[] = []
const fleetqClients: Client[] = []

afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => w.close({ timeoutMs: 500 })))
  await Promise.all(fleetqClients.splice(0).map((c) => c.close()))
  await clients.closeAll()
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})

async function start (options: Parameters<typeof startBroker>[0] = {}): Promise<{ b: TestBroker, http: string }> {
  const b = await startBroker({ http: { port: 0 }, ...options })
  brokers.push(b)
  const endpoint = b.broker.endpoints.find((e) => e.kind === 'http')
  if (endpoint === undefined) throw new Error('no http listener')
  return { b, http: `http://127.0.0.1:${endpoint.port}` }
}

interface Sample { name: string, labels: Record<string, string>, value: number }

/**
 * Prometheus text format 0.0.4, strictly enough to fail on a malformed line:
 * `# HELP` / `# TYPE` comments, then `name{label="value",...} number`.
 */
function parseExposition (text: string): { samples: Sample[], types: Map<string, string> } {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (type !== null) { types.set(type[1]!, type[2]!); continue }
    if (/^# HELP [a-zA-Z_:][a-zA-Z0-9_:]* /.test(line)) continue
    // prom-client writes NaN as `Nan`; Prometheus reads special values case-insensitively.
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (-?[0-9.eE+-]+|[Nn]a[Nn]|[+-]Inf)$/.exec(line)
    if (sample === null) throw new Error(`not a Prometheus sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (sample[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!
    samples.push({ name: sample[1]!, labels, value: Number(sample[3]) })
  }
  return { samples, types }
}

async function scrape (http: string): Promise<ReturnType<typeof parseExposition>> {
  const res = await fetch(`${http}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parseExposition(await res.text())
}

/** Scrapes until `done` holds for a scrape (the counters are read at scrape time; results arrive a moment after the work). */
async function scrapeUntil (http: string, done: (samples: Sample[]) => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000
  let samples = (await scrape(http)).samples
  while (!done(samples)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(samples.filter((s) => s.name.startsWith('fleetq_tasks') && s.value > 0))}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
    samples = (await scrape(http)).samples
  }
}

function value (samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
}

describe('operations listener', () => {
  it('/healthz and /readyz answer 200 while the broker serves; unknown paths 404, writes 405', async () => {
    const { http } = await start()
    expect((await fetch(`${http}/healthz`)).status).toBe(200)
    expect((await fetch(`${http}/readyz`)).status).toBe(200)
    expect((await fetch(`${http}/nope`)).status).toBe(404)
    expect((await fetch(`${http}/metrics`, { method: 'POST' })).status).toBe(405)
  })

  it('/readyz is never 200 once close() has begun', async () => {
    const { b, http } = await start()
    const closing = b.broker.close()
    const answer = await fetch(`${http}/readyz`).then((res) => res.status, () => 'refused')
    await closing
    expect([503, 'refused']).toContain(answer)
  })

  it('/metrics parses as Prometheus text, and its counters move with real traffic', async () => {
    const { b, http } = await start()
    const before = await scrape(http)
    expect(before.types.get('fleetq_task_submissions_total')).toBe('counter')
    expect(before.types.get('fleetq_connected_clients')).toBe('gauge')
    expect(value(before.samples, 'fleetq_connected_clients')).toBe(0)
    expect(value(before.samples, 'fleetq_process_resident_memory_bytes')).toBeGreaterThan(0)

    const dead = await clients.connect(b.url)
    await dead.client.subscribeAsync('$fleetq/dead/thumbnail', { qos: 1 })
    const producer = await clients.connect(b.url)
    await producer.client.publishAsync('tasks/thumbnail', JSON.stringify({ imageUrl: 'https://example.com/a.png', width: 10, height: 10 }), { qos: 1 })
    await producer.client.publishAsync('tasks/thumbnail', '{"width":"wide"}', { qos: 1 })
    await waitForMessages(dead.messages, 1, 'the dead letter')

    const after = await scrape(http)
    expect(value(after.samples, 'fleetq_connected_clients')).toBe(2)
    expect(value(after.samples, 'fleetq_task_submissions_total', { outcome: 'wrapped' })).toBe(1)
    expect(value(after.samples, 'fleetq_task_submissions_total', { outcome: 'invalid' })).toBe(1)
    // The valid task waits in its type's default group for a worker.
    expect(value(after.samples, 'fleetq_shared_group_depth', { group: 'thumbnail' })).toBe(1)
    expect(value(after.samples, 'fleetq_limit_hits_total', { limit: 'maxPacketBytes' })).toBe(0)
  })
})

describe('metrics that move with real traffic', () => {
  it('messages and bytes by QoS, subscriptions, retained messages, the persistence write histogram', async () => {
    // No $SYS/ rounds: the broker's own values are retained messages too.
    const { b, http } = await start({ sysIntervalSeconds: 0 })
    const sub = await clients.connect(b.url)
    await sub.client.subscribeAsync('q/#', { qos: 2 })
    await sub.client.subscribeAsync('other/+', { qos: 0 })
    const pub = await clients.connect(b.url)
    await pub.client.publishAsync('q/0', 'zero', { qos: 0 })
    await pub.client.publishAsync('q/1', 'one!', { qos: 1 })
    await pub.client.publishAsync('q/2', 'two!!', { qos: 2 })
    await pub.client.publishAsync('kept/a', 'retained', { qos: 1, retain: true })
    await waitForMessages(sub.messages, 3, 'the three publishes')

    const { samples, types } = await scrape(http)
    expect(types.get('fleetq_messages_received_total')).toBe('counter')
    for (const [qos, bytes] of [['0', 4], ['1', 4], ['2', 5]] as const) {
      expect(value(samples, 'fleetq_messages_sent_total', { qos })).toBe(1)
      expect(value(samples, 'fleetq_received_bytes_total', { qos })).toBeGreaterThanOrEqual(bytes)
      expect(value(samples, 'fleetq_sent_bytes_total', { qos })).toBe(bytes)
    }
    expect(value(samples, 'fleetq_messages_received_total', { qos: '0' })).toBe(1)
    expect(value(samples, 'fleetq_messages_received_total', { qos: '1' })).toBe(2) // q/1 and the retained one
    expect(value(samples, 'fleetq_messages_received_total', { qos: '2' })).toBe(1)
    expect(value(samples, 'fleetq_subscriptions')).toBe(2)
    expect(value(samples, 'fleetq_retained_messages')).toBe(1)
    expect(value(samples, 'fleetq_connected_clients_max')).toBe(2)
    expect(value(samples, 'fleetq_client_sessions')).toBe(2)

    // A histogram: cumulative buckets up to +Inf, which equals _count; _sum of seconds.
    expect(types.get('fleetq_persistence_write_seconds')).toBe('histogram')
    const buckets = samples.filter((s) => s.name === 'fleetq_persistence_write_seconds_bucket')
    expect(buckets.map((s) => s.labels['le'])).toEqual(['0.0001', '0.00025', '0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '+Inf'])
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value)
    const count = value(samples, 'fleetq_persistence_write_seconds_count')!
    expect(count).toBeGreaterThan(0) // the QoS 2 publish (stored until PUBREL) and the retained one
    expect(buckets.at(-1)!.value).toBe(count)
    expect(value(samples, 'fleetq_persistence_write_seconds_sum')).toBeGreaterThan(0)

    // And it moves.
    // Retained, so it is written: a QoS 1 publish only clean sessions receive is not (docs/durability.md, "What is journaled").
    await pub.client.publishAsync('q/1', 'again', { qos: 1, retain: true })
    await waitForMessages(sub.messages, 4, 'one more')
    const later = await scrape(http)
    expect(value(later.samples, 'fleetq_messages_received_total', { qos: '1' })).toBe(3)
    expect(value(later.samples, 'fleetq_persistence_write_seconds_count')).toBeGreaterThan(count)
  })

  it('task outcomes by type: submitted, completed by a real worker, retried, failed, dead-lettered, invalid, duplicate', async () => {
    const { b, http } = await start()
    const fleetq = async (): Promise<Client> => {
      const c = await connect(b.url, { schemas: await testSchemas(), reconnectPeriod: 100 })
      fleetqClients.push(c)
      return c
    }
    workers.push(await createWorker(await fleetq(), 'thumbnail', (payload) => {
      if (payload.width === 13) throw new Error('unlucky width')
      return { done: true }
    }))
    const producer = await fleetq()
    const thumb = (width: number): { imageUrl: string, width: number, height: number } => ({ imageUrl: 'https://example.com/a.png', width, height: 10 })
    await (await producer.submit('thumbnail', thumb(10))).result()
    // Fails twice: attempt 2 is a retry, then the task is dead-lettered and its result says failed.
    const failing = await producer.submit('thumbnail', thumb(13), { maxAttempts: 2, backoff: { type: 'fixed', delayMs: 0 } })
    await expect(failing.result()).rejects.toThrow()
    await producer.submit('thumbnail', thumb(11), { idempotencyKey: 'k1' })
    await producer.submit('thumbnail', thumb(11), { idempotencyKey: 'k1' })
    const raw = await clients.connect(b.url)
    await raw.client.publishAsync('tasks/thumbnail', '{"width":"wide"}', { qos: 1 })

    let latest: Sample[] = []
    const tasks = (outcome: string, type = 'thumbnail'): number | undefined => value(latest, 'fleetq_tasks_total', { type, outcome })
    // The second task of the pair completes too; the dead letters are the worker's and the gate's.
    await scrapeUntil(http, (samples) => {
      latest = samples
      return tasks('completed') === 2 && tasks('dead-lettered') === 2
    }, 'the completions and dead letters to be counted')
    expect(tasks('submitted')).toBe(3) // two plus the first of the idempotent pair
    expect(tasks('retried')).toBe(1)
    expect(tasks('failed')).toBe(1)
    expect(tasks('duplicate')).toBe(1)
    expect(tasks('invalid')).toBe(1)
    // Other known types have their own (zero) series; unknown ones are "other".
    expect(tasks('submitted', 'other')).toBe(0)
    expect(tasks('submitted', 'device-report')).toBe(0)
  })
})

describe('docs/grafana-dashboard.json', () => {
  it('is a Grafana dashboard on a Prometheus datasource variable, and every metric its queries name is in a real scrape', async () => {
    const dashboard = JSON.parse(await readFile(new URL('../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as {
      schemaVersion: number
      templating: { list: Array<{ name: string, type: string }> }
      panels: Array<{ title: string, datasource: { uid: string }, targets: Array<{ expr: string }> }>
    }
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36)
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource' }))
    const { http } = await start()
    const scraped = new Set((await scrape(http)).samples.map((s) => s.name))
    const exprs = dashboard.panels.flatMap((p) => {
      expect(p.datasource.uid, p.title).toBe('${DS_PROMETHEUS}')
      return p.targets.map((t) => t.expr)
    })
    expect(exprs.length).toBeGreaterThan(15)
    const missing = exprs.flatMap((e) => [...e.matchAll(/\bfleetq_[a-zA-Z0-9_]+/g)].map((m) => m[0])).filter((name) => !scraped.has(name))
    expect(missing).toEqual([])
  })
})

describe('$SYS/broker/ topics, in Mosquitto\'s layout', () => {
  it('publishes version, uptime, clients and PUBLISH traffic, retained, every sysIntervalSeconds', async () => {
    const b = await startBroker({ sysIntervalSeconds: 1 })
    brokers.push(b)
    const pub = await clients.connect(b.url)
    await pub.client.publishAsync('plain/topic', 'hello', { qos: 1 })
    // A late subscriber gets the retained values at once, then fresh ones each interval.
    const sys = await clients.connect(b.url)
    await sys.client.subscribeAsync('$SYS/broker/#', { qos: 0 })
    const latest = (topic: string): string | undefined => sys.messages.filter((m) => m.topic === `$SYS/broker/${topic}`).at(-1)?.payload
    // A round is published topic by topic: wait for the values to reach what was sent.
    await waitUntil(() => Number(latest('clients/connected')) === 2 && Number(latest('publish/bytes/received')) >= 5, 'the $SYS values to show both clients and the publish')
    expect(latest('version')).toMatch(/^fleetq version \d+\.\d+\.\d+/)
    expect(latest('uptime')).toMatch(/^\d+ seconds$/)
    expect(Number(latest('publish/messages/received'))).toBeGreaterThanOrEqual(1)
    // `#` does not reach `$SYS/` [MQTT-4.7.2-1].
    const plain = await clients.connect(b.url)
    await plain.client.subscribeAsync('#', { qos: 0 })
    await pub.client.publishAsync('plain/marker', 'm', { qos: 1 })
    await waitForMessages(plain.messages, 1, 'the marker')
    expect(plain.messages.filter((m) => m.topic.startsWith('$SYS/'))).toEqual([])
  })
})
