import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createBroker, ErrorCodes, type Broker } from '../broker/index.js'
import { Clients, waitForMessages } from './helpers/mqtt-helpers.js'
import { uniqueTopic } from './helpers/start-broker.js'

/*
 * createBroker() closes whatever it opened when a later step fails, through
 * the same list of closers close() uses (broker/closers.ts): above all the
 * LevelDB lock, so the same process can start a broker on that data
 * directory again at once.
 */
describe('a start that fails halfway', () => {
  const dirs: string[] = []
  const brokers: Broker[] = []
  const servers: Server[] = []
  const clients = new Clients()
  afterEach(async () => {
    await clients.closeAll()
    await Promise.all(brokers.splice(0).map((b) => b.close()))
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))))
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })))
  })

  async function dataDir (): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'fleetq-start-'))
    dirs.push(dir)
    return dir
  }

  /** The data directory opens again, in this process, and the broker on it serves. */
  async function startsAgain (dir: string): Promise<void> {
    const broker = await createBroker({ port: 0, logLevel: 'silent', dataDir: dir })
    brokers.push(broker)
    const topic = uniqueTopic('again')
    const { client, messages } = await clients.connect(`mqtt://127.0.0.1:${broker.port}`, { clientId: topic })
    await client.subscribeAsync(topic, { qos: 1 })
    await client.publishAsync(topic, 'up', { qos: 1 })
    await waitForMessages(messages, 1, 'round-trip message')
  }

  it('a config schedule the scheduler refuses (after the store, groups and delayed messages opened)', async () => {
    const dir = await dataDir()
    // Valid for the config schema; only the scheduler checks a task payload against its type's schema.
    const bad = { name: 'bad-thumbs', cron: '* * * * *', timezone: 'UTC', task: 'thumbnail', payload: { width: 'wide' } }
    await expect(createBroker({ port: 0, logLevel: 'silent', dataDir: dir, schedules: [bad] }))
      .rejects.toMatchObject({ code: ErrorCodes.SCHEDULE_INVALID })
    await startsAgain(dir)
  })

  it('a port in use (after Aedes started and the journal was replayed)', async () => {
    const dir = await dataDir()
    const taken = createServer()
    servers.push(taken)
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    const port = (taken.address() as { port: number }).port
    await expect(createBroker({ port, host: '127.0.0.1', logLevel: 'silent', dataDir: dir }))
      .rejects.toMatchObject({ code: ErrorCodes.PORT_IN_USE })
    await startsAgain(dir)
  })

  it('a data directory another broker holds: refused as locked, and the holder is unharmed', async () => {
    const dir = await dataDir()
    const holder = await createBroker({ port: 0, logLevel: 'silent', dataDir: dir })
    brokers.push(holder)
    await expect(createBroker({ port: 0, logLevel: 'silent', dataDir: dir }))
      .rejects.toMatchObject({ code: ErrorCodes.DATA_DIR_LOCKED })
    const topic = uniqueTopic('holder')
    const { client, messages } = await clients.connect(`mqtt://127.0.0.1:${holder.port}`, { clientId: topic })
    await client.subscribeAsync(topic, { qos: 1 })
    await client.publishAsync(topic, 'still mine', { qos: 1 })
    await waitForMessages(messages, 1, 'round-trip message')
    await holder.close()
    await startsAgain(dir)
  })

  it('close() runs once, however often it is called', async () => {
    const broker = await createBroker({ port: 0, logLevel: 'silent', dataDir: await dataDir() })
    const first = broker.close()
    expect(broker.close()).toBe(first)
    await first
    await broker.close()
  })
})
