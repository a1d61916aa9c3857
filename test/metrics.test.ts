import { afterEach, describe, expect, it } from 'vitest'
import { Clients, waitForMessages, waitUntil } from './helpers/mqtt-helpers.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'

/*
 * The operations listener (docs/operations.md): health, readiness and
 * Prometheus metrics over real HTTP, moving with real MQTT traffic.
 */

const brokers: TestBroker[] = []
const clients = new Clients()

afterEach(async () => {
  await clients.closeAll()
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})

async function start (): Promise<{ b: TestBroker, http: string }> {
  const b = await startBroker({ http: { port: 0 } })
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
