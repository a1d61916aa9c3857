import { afterEach, describe, expect, it } from 'vitest'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { Clients, expectNothingFor, summary, waitForMessages, waitUntil, type TestClient } from './helpers/mqtt-helpers.js'

// Topic filter matching, MQTT 3.1.1 §4.7. `P` stands for a prefix unique to
// the test, `$P` for the same prefix behind a `$` (clients may not publish to
// `$SYS/`, so another `$` topic stands in for system topics).
const topics = [
  'P', 'P/a', 'P/a/b', 'P/a/b/c', 'P/b/b', 'P/x/b', 'P/a//b', 'P//b', 'P/a/', '/P/a', '$P/a', '$P/x/b'
] as const
type Topic = typeof topics[number]

interface Case { filter: string, matches: Topic[], why: string }

const cases: Case[] = [
  { filter: 'P/a', matches: ['P/a'], why: 'an exact filter matches its topic only' },
  { filter: 'P/a//b', matches: ['P/a//b'], why: 'an empty level is a level like any other' },
  { filter: 'P/#', matches: ['P', 'P/a', 'P/a/b', 'P/a/b/c', 'P/b/b', 'P/x/b', 'P/a//b', 'P//b', 'P/a/'], why: '# matches the parent level too [MQTT-4.7.1-2]' },
  { filter: 'P/a/#', matches: ['P/a', 'P/a/b', 'P/a/b/c', 'P/a//b', 'P/a/'], why: '# matches any number of levels, zero included' },
  { filter: 'P/+/#', matches: ['P/a', 'P/a/b', 'P/a/b/c', 'P/b/b', 'P/x/b', 'P/a//b', 'P//b', 'P/a/'], why: '+ needs a level, # then matches the rest' },
  { filter: 'P/+', matches: ['P/a'], why: '+ matches exactly one level' },
  { filter: 'P/+/b', matches: ['P/a/b', 'P/b/b', 'P/x/b', 'P//b'], why: '+ in the middle, the empty level included' },
  { filter: 'P/a/+', matches: ['P/a/b', 'P/a/'], why: '+ at the end matches an empty last level' },
  { filter: 'P/a/+/b', matches: ['P/a//b'], why: '+ matches an empty middle level' },
  { filter: 'P/+/+', matches: ['P/a/b', 'P/b/b', 'P/x/b', 'P//b', 'P/a/'], why: 'two single-level wildcards' },
  { filter: '+/a', matches: ['P/a'], why: 'a leading + does not match a $ topic [MQTT-4.7.2-1]' },
  { filter: '+/+/b', matches: ['P/a/b', 'P/b/b', 'P/x/b', 'P//b'], why: 'a leading + does not match a $ topic [MQTT-4.7.2-1]' },
  { filter: '+/P/a', matches: ['/P/a'], why: 'a leading empty level is matched by +' },
  { filter: '#', matches: ['P', 'P/a', 'P/a/b', 'P/a/b/c', 'P/b/b', 'P/x/b', 'P/a//b', 'P//b', 'P/a/', '/P/a'], why: 'a leading # matches everything but $ topics [MQTT-4.7.2-1]' },
  { filter: '$P/#', matches: ['$P/a', '$P/x/b'], why: 'an explicit $ prefix matches $ topics' },
  { filter: '$P/+', matches: ['$P/a'], why: '+ after an explicit $ level' },
  { filter: '$P/+/b', matches: ['$P/x/b'], why: '+ in the middle of a $ filter' }
]

describe('topic wildcards', () => {
  let b: TestBroker | undefined
  const clients = new Clients()
  afterEach(async () => {
    await clients.closeAll()
    await b?.close()
  })

  it('delivers each message to exactly the subscriptions whose filter matches it', async () => {
    b = await startBroker()
    const prefix = uniqueTopic('wc')
    const real = (t: string): string => t.replace(/P/, prefix)

    // one subscriber per filter, so each message's recipients are known
    const subs: Array<{ c: Case, sub: TestClient }> = []
    for (const [i, c] of cases.entries()) {
      const sub = await clients.connect(b.url, { clientId: `wc-sub-${i}` })
      const granted = await sub.client.subscribeAsync(real(c.filter), { qos: 1 })
      expect(granted.map((g) => g.qos), `SUBACK for ${c.filter}`).toEqual([1])
      subs.push({ c, sub })
    }

    const pub = await clients.connect(b.url, { clientId: 'wc-pub' })
    for (const t of topics) await pub.client.publishAsync(real(t), t, { qos: 1 })

    for (const { c, sub } of subs) {
      await waitForMessages(sub.messages, c.matches.length, `messages for ${c.filter}`)
    }
    // window to catch a message delivered to a filter that does not match it
    await expectNothingFor(400, () => subs.some(({ c, sub }) => sub.messages.length > c.matches.length),
      () => subs.filter(({ c, sub }) => sub.messages.length > c.matches.length)
        .map(({ c, sub }) => `${c.filter} got ${summary(sub.messages).join(', ')}`).join('; '))

    const actual = subs.map(({ c, sub }) => ({ filter: c.filter, why: c.why, got: sub.messages.map((m) => m.payload).sort() }))
    const expected = subs.map(({ c }) => ({ filter: c.filter, why: c.why, got: [...c.matches].sort() }))
    expect(actual).toEqual(expected)
    // the payload is the template topic: each arrived on its own topic
    for (const { sub } of subs) {
      for (const m of sub.messages) expect(m.topic).toBe(real(m.payload))
    }
  })

  it('delivers a message matched by two overlapping subscriptions of one client once', async () => {
    b = await startBroker()
    const p = uniqueTopic('overlap')
    const sub = await clients.connect(b.url, { clientId: 'overlap-sub' })
    await sub.client.subscribeAsync(`${p}/#`, { qos: 1 })
    await sub.client.subscribeAsync(`${p}/+`, { qos: 1 })
    await sub.client.subscribeAsync(`${p}/a`, { qos: 1 })
    const pub = await clients.connect(b.url, { clientId: 'overlap-pub' })

    await pub.client.publishAsync(`${p}/a`, 'three filters', { qos: 1 })
    await pub.client.publishAsync(`${p}/b`, 'two filters', { qos: 1 })
    await pub.client.publishAsync(`${p}/b/c`, 'one filter', { qos: 1 })
    await pub.client.publishAsync(`${p}/a`, 'three filters, qos 0', { qos: 0 })

    await waitForMessages(sub.messages, 4, 'messages')
    // window to catch a second copy sent for the second matching filter
    await expectNothingFor(400, () => sub.messages.length > 4, () => summary(sub.messages).join(', '))
    expect(summary(sub.messages).sort()).toEqual([
      `${p}/a=three filters`, `${p}/a=three filters, qos 0`, `${p}/b/c=one filter`, `${p}/b=two filters`
    ].sort())
  })

  it('delivers an overlapping match once, at the highest QoS granted [MQTT-3.3.5-1]', async () => {
    b = await startBroker()
    const p = uniqueTopic('overlap-qos')
    // each pair in one SUBSCRIBE, in both orders; `P/a` matches both filters, `P/a/b` only `P/#`
    const pairs = [
      { id: 'hash0-plus1', filters: { 'P/#': 0, 'P/+': 1 }, expected: { both: 1, 'hash only': 0 } },
      { id: 'plus1-hash0', filters: { 'P/+': 1, 'P/#': 0 }, expected: { both: 1, 'hash only': 0 } },
      { id: 'exact0-hash1', filters: { 'P/a': 0, 'P/#': 1 }, expected: { both: 1, 'hash only': 1 } },
      { id: 'hash1-plus0', filters: { 'P/#': 1, 'P/+': 0 }, expected: { both: 1, 'hash only': 1 } }
    ]
    const subs: TestClient[] = []
    for (const pair of pairs) {
      const sub = await clients.connect(b.url, { clientId: `overlap-qos-${pair.id}` })
      const filters = Object.fromEntries(Object.entries(pair.filters).map(([f, qos]) => [f.replace('P', p), { qos: qos as 0 | 1 }]))
      const granted = await sub.client.subscribeAsync(filters)
      expect(granted.map((g) => g.qos)).toEqual(Object.values(pair.filters))
      subs.push(sub)
    }
    const pub = await clients.connect(b.url, { clientId: 'overlap-qos-pub' })
    await pub.client.publishAsync(`${p}/a`, 'both', { qos: 1 })
    await pub.client.publishAsync(`${p}/a/b`, 'hash only', { qos: 1 })

    for (const sub of subs) await waitForMessages(sub.messages, 2, 'messages')
    // window to catch a second copy sent for the second matching filter
    await expectNothingFor(400, () => subs.some((sub) => sub.messages.length > 2),
      () => subs.map((sub) => summary(sub.messages).join(', ')).join(' | '))
    const got = pairs.map((pair, i) => ({ id: pair.id, qos: Object.fromEntries(subs[i]!.messages.map((m) => [m.payload, m.qos])) }))
    expect(got).toEqual(pairs.map((pair) => ({ id: pair.id, qos: pair.expected })))
  })

  it('keeps unrelated prefixes apart: no cross-talk between clients', async () => {
    b = await startBroker()
    const p1 = uniqueTopic('iso')
    const p2 = uniqueTopic('iso')
    const s1 = await clients.connect(b.url, { clientId: 'iso-1' })
    const s2 = await clients.connect(b.url, { clientId: 'iso-2' })
    await s1.client.subscribeAsync(`${p1}/#`, { qos: 1 })
    await s2.client.subscribeAsync(`${p2}/#`, { qos: 1 })
    const pub = await clients.connect(b.url, { clientId: 'iso-pub' })
    for (let i = 0; i < 20; i++) {
      await pub.client.publishAsync(`${i % 2 === 0 ? p1 : p2}/n`, String(i), { qos: 1 })
    }
    await waitUntil(() => s1.messages.length >= 10 && s2.messages.length >= 10, 'ten messages each')
    // window to catch a message crossing over after the expected ones
    await expectNothingFor(300, () => s1.messages.length > 10 || s2.messages.length > 10,
      () => `${summary(s1.messages).join(',')} | ${summary(s2.messages).join(',')}`)
    // one publisher, one topic each: in order [MQTT-4.6.0-6]
    expect(s1.messages.map((m) => m.payload)).toEqual(['0', '2', '4', '6', '8', '10', '12', '14', '16', '18'])
    expect(s2.messages.map((m) => m.payload)).toEqual(['1', '3', '5', '7', '9', '11', '13', '15', '17', '19'])
    expect(new Set(s1.messages.map((m) => m.topic))).toEqual(new Set([`${p1}/n`]))
  })
})
