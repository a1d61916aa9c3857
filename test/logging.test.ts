import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../broker/logger.js'
import { Clients, waitUntil } from './helpers/mqtt-helpers.js'
import { startBroker, type TestBroker } from './helpers/start-broker.js'

/* The broker's logs (docs/operations.md#logs): formats, and connection ids on lines about a connection. */

const brokers: TestBroker[] = []
const clients = new Clients()

afterEach(async () => {
  await clients.closeAll()
  await Promise.all(brokers.splice(0).map((b) => b.close()))
})

function capture (): { stream: PassThrough, lines: () => string[] } {
  const stream = new PassThrough()
  const chunks: string[] = []
  stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString()))
  return { stream, lines: () => chunks.join('').split('\n').filter((l) => l !== '') }
}

describe('log formats', () => {
  it('json: one JSON object per line, with the message and fields', () => {
    const out = capture()
    createLogger('info', 'json', out.stream).info({ clientId: 'c1', conn: 7 }, 'hello json')
    const [line] = out.lines()
    expect(JSON.parse(line!)).toMatchObject({ msg: 'hello json', clientId: 'c1', conn: 7, name: 'fleetq', level: 30 })
  })

  it('pretty: lines for people, no JSON, the message and fields there, written before the call returns', () => {
    const out = capture()
    createLogger('info', 'pretty', out.stream).warn({ clientId: 'c1', conn: 7 }, 'hello pretty')
    const text = out.lines()
    expect(text.join('\n')).toContain('hello pretty')
    expect(text.join('\n')).toMatch(/WARN/)
    expect(text.join('\n')).toMatch(/clientId: "c1"/)
    for (const line of text) expect(line.trim().startsWith('{')).toBe(false)
  })

  it('auto: JSON when the destination is not a terminal; the level still follows logger.level set at run time', () => {
    const out = capture()
    const logger = createLogger('info', 'auto', out.stream)
    logger.debug('not yet')
    logger.level = 'debug'
    logger.debug('now')
    expect(out.lines().map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['now'])
  })

  it('a one-argument call still works (format auto, stderr)', () => {
    expect(createLogger('silent').level).toBe('silent')
  })
})

describe('connection ids', () => {
  it('lines about a connection carry clientId and conn; two connections with one client id have different conns', async () => {
    const out = capture()
    const logger = createLogger('debug', 'json', out.stream)
    const b = await startBroker({ logger })
    brokers.push(b)
    const first = await clients.connect(b.url, { clientId: 'twin' })
    // The same client id again: a takeover, a new connection.
    await clients.connect(b.url, { clientId: 'twin' })
    await waitUntil(() => first.client.disconnected || !first.client.connected, 'the takeover')
    const entries = (): Array<Record<string, unknown>> => out.lines().map((l) => JSON.parse(l) as Record<string, unknown>)
    await waitUntil(() => entries().filter((e) => e['msg'] === 'client connected' && e['clientId'] === 'twin').length === 2, 'both connections logged')
    const connected = entries().filter((e) => e['msg'] === 'client connected' && e['clientId'] === 'twin')
    expect(connected.map((e) => typeof e['conn'])).toEqual(['number', 'number'])
    expect(connected[0]!['conn']).not.toBe(connected[1]!['conn'])
    await waitUntil(() => entries().some((e) => e['msg'] === 'client disconnected' && e['conn'] === connected[0]!['conn']), 'the first connection\'s disconnect, by its conn')
    // Every line that names a client names its connection too.
    for (const e of entries()) if (typeof e['clientId'] === 'string') expect(e).toHaveProperty('conn')
  })
})
