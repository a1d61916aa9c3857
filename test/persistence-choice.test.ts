import { mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Level } from 'level'
import { Keyspace } from '../broker/persistence/keyspace.js'
import { createSessionStores } from '../broker/persistence/open-persistence.js'

// Why fleetq ships its own persistence rather than aedes-persistence-level 9.2:
// the same scenarios run against both; the upstream one is expected to get
// them wrong, ours right. If upstream is fixed, these tests say so.

interface Sub { clientId: string, topic: string, qos: number }
interface PersistenceUnderTest {
  setup (broker: { id: string }): Promise<void>
  addSubscriptions (client: { id: string }, subs: Array<{ topic: string, qos: number }>): Promise<void>
  removeSubscriptions (client: { id: string }, topics: string[]): Promise<void>
  subscriptionsByTopic (topic: string): Promise<Sub[]>
  outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: object): Promise<void>
  outgoingStream (client: { id: string }): AsyncIterable<{ payload: Buffer }>
  destroy (): Promise<void>
}

const require = createRequire(import.meta.url)
const UpstreamLevelPersistence = require('aedes-persistence-level/asyncPersistence.js') as new (db: unknown) => PersistenceUnderTest

const dirs: string[] = []
async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetq-choice-'))
  dirs.push(dir)
  return dir
}
afterEach(async () => { await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true }))) })

type Make = () => Promise<PersistenceUnderTest>

const candidates: Record<string, () => Promise<{ make: Make }>> = {
  'fleetq LevelPersistence': async () => {
    const dir = await tempDir()
    return {
      make: async () => {
        const keyspace = await Keyspace.open({ location: dir })
        return createSessionStores(keyspace).persistence as unknown as PersistenceUnderTest
      }
    }
  },
  'aedes-persistence-level 9.2': async () => {
    const dir = await tempDir()
    return { make: async () => new UpstreamLevelPersistence(new Level(dir, { valueEncoding: 'buffer' })) }
  }
}

async function overlappingFiltersKeepBoth (make: Make): Promise<string[]> {
  const p = await make()
  await p.setup({ id: 'b1' })
  const client = { id: 'device-1' }
  await p.addSubscriptions(client, [{ topic: 'a/#', qos: 1 }])
  await p.addSubscriptions(client, [{ topic: 'a/b', qos: 1 }])
  await p.removeSubscriptions(client, ['a/#'])
  // `a/b` is still subscribed: a message to a/b must still be queued for it
  const subs = await p.subscriptionsByTopic('a/b')
  await p.destroy()
  return subs.map((s) => `${s.clientId} ${s.topic}`)
}

async function orderAcrossRestarts (make: Make): Promise<string[]> {
  const payloads: string[] = []
  for (let run = 0; run < 6; run++) {
    const p = await make()
    // a new broker id per start, as Aedes picks by default
    const brokerId = `${String.fromCharCode(122 - run)}-broker`
    await p.setup({ id: brokerId })
    await p.outgoingEnqueueCombi([{ clientId: 'c' }], {
      cmd: 'publish', topic: 't', payload: Buffer.from(`run-${run}`), qos: 1, retain: false, dup: false, brokerId, brokerCounter: 1
    })
    await p.destroy()
  }
  const p = await make()
  await p.setup({ id: 'last' })
  for await (const packet of p.outgoingStream({ id: 'c' })) payloads.push(Buffer.from(packet.payload).toString())
  await p.destroy()
  return payloads
}

describe('persistence choice: overlapping filters of one client', () => {
  it('fleetq keeps a/b subscribed after a/# is removed', async () => {
    const { make } = await candidates['fleetq LevelPersistence']!()
    expect(await overlappingFiltersKeepBoth(make)).toEqual(['device-1 a/b'])
  })
  it('aedes-persistence-level 9.2 loses a/b (why we do not ship it)', async () => {
    const { make } = await candidates['aedes-persistence-level 9.2']!()
    expect(await overlappingFiltersKeepBoth(make)).toEqual([])
  })
})

describe('persistence choice: queue order across broker restarts', () => {
  const inOrder = ['run-0', 'run-1', 'run-2', 'run-3', 'run-4', 'run-5']
  it('fleetq replays a queue filled over several broker lifetimes in order', async () => {
    const { make } = await candidates['fleetq LevelPersistence']!()
    expect(await orderAcrossRestarts(make)).toEqual(inOrder)
  })
  it('aedes-persistence-level 9.2 orders it by broker id instead (why we do not ship it)', async () => {
    const { make } = await candidates['aedes-persistence-level 9.2']!()
    expect(await orderAcrossRestarts(make)).toEqual([...inOrder].reverse())
  })
})
