// The keyspace (broker/persistence/keyspace.ts): one database, a sublevel per
// owner, atomic batches across sublevels, and the one-time move of data left at
// the root by the previous layout (docs/keyspace.md).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Level } from 'level'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { Keyspace, SUBLEVELS, type SublevelName } from '../broker/persistence/keyspace.js'
import type { KeyValueStore } from '../broker/persistence/store.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c() })

async function tempDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetq-keyspace-'))
  cleanups.push(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function openKeyspace (location?: string, logger?: pino.Logger): Promise<Keyspace> {
  const keyspace = await Keyspace.open({ location, logger })
  cleanups.push(() => keyspace.close())
  return keyspace
}

/** The database as the previous layout wrote it: keys at the root, utf8 keys, buffer values. */
async function rawRoot (dir: string): Promise<Level<string, Buffer>> {
  const db = new Level<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' })
  await db.open()
  return db
}

async function entries (store: KeyValueStore): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = []
  for await (const [key, value] of store.iterator()) out.push([key, value.toString()])
  return out
}

function capturingLogger (): { logger: pino.Logger, lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
  return { logger: pino({ level: 'info' }, stream), lines }
}

describe('keyspace', () => {
  it('names one sublevel for each of the eleven prefixes of the previous layout', () => {
    const prefixes = Object.values(SUBLEVELS).map((s) => s.legacyPrefix).sort()
    expect(prefixes).toEqual(['dq:', 'gd:', 'gm:', 'i:', 'ik:', 'j:', 'o:', 'r:', 's:', 'sc:', 'w:'])
    // No prefix is the start of another: each old key belongs to exactly one sublevel.
    for (const a of prefixes) for (const b of prefixes) if (a !== b) expect(b.startsWith(a)).toBe(false)
  })

  for (const backend of ['LevelDB', 'memory-level'] as const) {
    describe(`on ${backend}`, () => {
      const open = async (): Promise<Keyspace> => openKeyspace(backend === 'LevelDB' ? await tempDir() : undefined)

      it('gives each owner its own keys: the same key in two sublevels is two records', async () => {
        const keyspace = await open()
        const retained = keyspace.sublevel('retained')
        const delayed = keyspace.sublevel('delayed')
        expect(keyspace.sublevel('retained')).toBe(retained)
        await retained.batch([{ type: 'put', key: 'a', value: Buffer.from('retained a') }, { type: 'put', key: 'b', value: Buffer.from('retained b') }])
        await delayed.batch([{ type: 'put', key: 'a', value: Buffer.from('delayed a') }])
        expect(await entries(retained)).toEqual([['a', 'retained a'], ['b', 'retained b']])
        expect(await entries(delayed)).toEqual([['a', 'delayed a']])
        expect((await delayed.get('b'))).toBeUndefined()
        await delayed.batch([{ type: 'del', key: 'a' }])
        expect((await retained.get('a'))?.toString()).toBe('retained a')
      })

      it('writes one batch across sublevels, and refuses an op that names no sublevel', async () => {
        const keyspace = await open()
        const schedules = keyspace.sublevel('schedules')
        const delayed = keyspace.sublevel('delayed')
        await keyspace.writer.batch([
          { type: 'put', sublevel: delayed, key: 'tick', value: Buffer.from('message') },
          { type: 'put', sublevel: schedules, key: 'nightly', value: Buffer.from('done') }
        ])
        expect(await entries(delayed)).toEqual([['tick', 'message']])
        expect(await entries(schedules)).toEqual([['nightly', 'done']])
        const untagged = { type: 'put', key: 'root', value: Buffer.from('x') } as unknown as Parameters<Keyspace['writer']['batch']>[0][number]
        await expect(keyspace.writer.batch([{ type: 'put', sublevel: delayed, key: 'other', value: Buffer.from('y') }, untagged])).rejects.toThrow(/must name a sublevel of this keyspace/)
        // Refused before anything was written.
        expect(await entries(delayed)).toEqual([['tick', 'message']])
      })
    })
  }

  it('keeps each sublevel across a restart on LevelDB', async () => {
    const dir = await tempDir()
    let keyspace = await Keyspace.open({ location: dir })
    await keyspace.sublevel('journal').batch([{ type: 'put', key: '0000000000000001', value: Buffer.from('j') }])
    await keyspace.close()
    await keyspace.close() // idempotent
    keyspace = await openKeyspace(dir)
    expect(await entries(keyspace.sublevel('journal'))).toEqual([['0000000000000001', 'j']])
    expect(await entries(keyspace.sublevel('wills'))).toEqual([])
  })

  it('moves data of the previous layout into the sublevels on open, in batches, once, and logs it', async () => {
    const dir = await tempDir()
    const old = await rawRoot(dir)
    const expected = new Map<SublevelName, Array<[string, string]>>()
    const ops: Array<{ type: 'put', key: string, value: Buffer }> = []
    for (const [name, { legacyPrefix }] of Object.entries(SUBLEVELS) as Array<[SublevelName, { legacyPrefix: string }]>) {
      // 2,500 queued messages: more than one migration batch.
      const count = name === 'outgoing' ? 2500 : 2
      const rows: Array<[string, string]> = []
      for (let i = 0; i < count; i++) {
        const key = `dev%2F${i % 3}:${String(i).padStart(16, '0')}`
        rows.push([key, `${name} ${i}`])
        ops.push({ type: 'put', key: legacyPrefix + key, value: Buffer.from(`${name} ${i}`) })
      }
      expected.set(name, rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)))
    }
    await old.batch(ops)
    await old.close()

    const { logger, lines } = capturingLogger()
    let keyspace = await Keyspace.open({ location: dir, logger })
    for (const [name, rows] of expected) expect(await entries(keyspace.sublevel(name)), name).toEqual(rows)
    const moved = lines.filter((l) => String(l['msg']).startsWith('moved data from the previous key layout'))
    expect(moved).toHaveLength(1)
    expect(moved[0]).toMatchObject({ total: 2500 + 10 * 2, moved: { outgoing: 2500, retained: 2, 'idempotency-keys': 2 } })
    await keyspace.close()

    // Nothing is left at the root under an old prefix; a second open moves nothing.
    const root = await rawRoot(dir)
    const left: string[] = []
    for await (const key of root.keys()) if (!key.startsWith('!')) left.push(key)
    await root.close()
    expect(left).toEqual([])
    lines.length = 0
    keyspace = await openKeyspace(dir, logger)
    expect(lines.filter((l) => String(l['msg']).startsWith('moved'))).toEqual([])
    expect(await entries(keyspace.sublevel('wills'))).toEqual(expected.get('wills'))
  })

  it('finishes a move a crash interrupted: records already moved stay, the rest follow', async () => {
    const dir = await tempDir()
    // As if the previous open moved `a` and died before `b`.
    let keyspace = await Keyspace.open({ location: dir })
    await keyspace.sublevel('retained').batch([{ type: 'put', key: 'fleet/a', value: Buffer.from('a') }])
    await keyspace.close()
    const old = await rawRoot(dir)
    await old.put('r:fleet/b', Buffer.from('b'))
    await old.close()
    keyspace = await openKeyspace(dir)
    expect(await entries(keyspace.sublevel('retained'))).toEqual([['fleet/a', 'a'], ['fleet/b', 'b']])
  })
})
