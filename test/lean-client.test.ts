import type { Client } from 'aedes'
import { afterEach, describe, expect, it } from 'vitest'
import { leanClient, LazySet } from '../broker/mqtt/internals/lean-client.js'
import { Clients, waitForMessages } from './helpers/mqtt-helpers.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { aedesClientOf } from './helpers/aedes-client.js'

/*
 * Tripwire for broker/mqtt/internals/lean-client.ts: what it replaces on an
 * Aedes 1.2 client is still there, and the client works the same with the
 * replacements (parsing split packets, QoS 2 in flight, dedupe of deliveries).
 * Real broker, real mqtt.js clients.
 */

type Internals = Client & { _parser: { _list: unknown, _events: object, _states: unknown }, _events: object, _inboundInflight: unknown, duplicates: Record<string, number> }

describe('lean client (broker/mqtt/internals/lean-client.ts)', () => {
  let b: TestBroker | undefined
  const clients = new Clients()
  afterEach(async () => {
    await clients.closeAll()
    await b?.close()
    b = undefined
  })

  const aedesClient = (id: string): Internals => aedesClientOf<Internals>(b, id)

  it('finds what it replaces on an Aedes client, and the client still parses, holds QoS 2 in flight and dedupes', async () => {
    b = await startBroker()
    const topic = uniqueTopic('lean')
    const { client: sub, messages } = await clients.connect(b.url, { clientId: `${topic}-sub` })
    const { client: pub } = await clients.connect(b.url, { clientId: `${topic}-pub` })
    // The adapter applies it to every connection (broker/mqtt/adapter.ts handle()), and
    // leanClient throws when what it replaces is not there: so these connections exist only
    // because Aedes still made a stream buffer list, a Set and a null-prototype object.
    for (const id of [`${topic}-sub`, `${topic}-pub`]) {
      const c = aedesClient(id)
      expect(c._inboundInflight).toBeInstanceOf(LazySet)
      expect(c.duplicates.constructor, 'a key from the wire reads an inherited property').toBeUndefined()
      expect(typeof (c._parser._list as { append?: unknown }).append, 'mqtt-packet parser._list is no longer a buffer list').toBe('function')
      expect(typeof (c._parser._list as { pipe?: unknown }).pipe, 'the parser keeps a stream where a plain buffer list does').toBe('undefined')
      expect(() => { leanClient(c) }, 'leanClient checks what it replaces').toThrow(/Aedes internals moved/)
      // Replaced by objects that read no inherited name either (GHSA-52qw-whmv-87c5), but start with fast properties.
      expect(Object.getPrototypeOf(c._events), 'client._events has a prototype').toBeNull()
      expect(Object.keys(c._events).sort()).toEqual(['error'])
      expect(Object.getPrototypeOf(c._parser._events), 'parser._events has a prototype').toBeNull()
      expect(Object.isFrozen(c._parser._states), 'the parser has its own _states array').toBe(true)
    }
    await sub.subscribeAsync(`${topic}/#`, { qos: 2 })
    // Large enough to arrive in several reads: the parser's buffer list joins them.
    const big = Buffer.alloc(300_000, 7)
    for (let i = 0; i < 20; i++) await pub.publishAsync(`${topic}/q${i % 3}`, i === 5 ? big : Buffer.from(String(i)), { qos: (i % 3) as 0 | 1 | 2 })
    const got = await waitForMessages(messages, 20, 'deliveries through the lean clients')
    // Across topics and QoS levels MQTT promises no order [MQTT-4.6.0]: compared as sets.
    expect(got.map((m) => m.payload.length === big.length ? 'big' : m.payload.toString()).sort()).toEqual(
      Array.from({ length: 20 }, (_, i) => i === 5 ? 'big' : String(i)).sort())
    expect(Object.keys(aedesClient(`${topic}-sub`).duplicates), 'dedupe no longer writes client.duplicates by broker id').toHaveLength(1)
    expect((aedesClient(`${topic}-pub`)._inboundInflight as LazySet<number>).size, 'a QoS 2 PUBLISH stayed in flight after its PUBREL').toBe(0)
  })

  it('LazySet: a Set made on the first add', () => {
    const set = new LazySet<number>()
    expect(set.size).toBe(0)
    expect(set.has(1)).toBe(false)
    expect(set.delete(1)).toBe(false)
    set.add(1).add(2).add(1)
    expect(set.size).toBe(2)
    expect(set.has(2)).toBe(true)
    expect(set.delete(2)).toBe(true)
    expect(set.size).toBe(1)
  })
})
