// The backends every store conformance suite runs on, and the harness a suite
// drives a store through. A Redis backend later provides the same harness.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Keyspace } from '../../broker/persistence/keyspace.js'

/**
 * One store under test, on one backend. A suite creates a harness per test
 * and closes it afterwards.
 */
export interface StoreHarness<S> {
  /** The store on an empty database. */
  open (): Promise<S>
  /**
   * A broker restart as the store sees it: waits for the store's writes,
   * then builds a new store on the same data. LevelDB closes and reopens the
   * same directory; memory-level keeps its in-process database. Either way,
   * what the new store returns comes from the database, not from the old
   * store's objects.
   */
  restart (): Promise<S>
  close (): Promise<void>
}

export type StoreFactory<S> = () => StoreHarness<S>

export interface Backend {
  name: string
  /** A fresh keyspace, and how to open it again after closing it (null: it cannot be, memory-level). */
  create (): Promise<{ keyspace: Keyspace, reopen: (() => Promise<Keyspace>) | null, dispose: () => Promise<void> }>
}

export const BACKENDS: Backend[] = [
  {
    name: 'LevelDB',
    async create () {
      const location = await mkdtemp(join(tmpdir(), 'fleetq-store-'))
      return {
        keyspace: await Keyspace.open({ location }),
        reopen: () => Keyspace.open({ location }),
        dispose: () => rm(location, { recursive: true, force: true })
      }
    }
  },
  {
    name: 'memory-level',
    async create () {
      return { keyspace: await Keyspace.open(), reopen: null, dispose: async () => undefined }
    }
  }
]

/** What a store needs built on a keyspace: the store, and how to wait for its writes. */
export interface Built<S> {
  store: S
  flush: () => Promise<void>
}

/** A harness for a store built on a keyspace of `backend`. */
export function keyspaceHarness<S> (backend: Backend, build: (keyspace: Keyspace) => Built<S>): StoreFactory<S> {
  return () => {
    let db: Awaited<ReturnType<Backend['create']>> | null = null
    let keyspace: Keyspace | null = null
    let current: Built<S> | null = null
    return {
      async open () {
        db = await backend.create()
        keyspace = db.keyspace
        current = build(keyspace)
        return current.store
      },
      async restart () {
        if (db === null || keyspace === null || current === null) throw new Error('open() first')
        await current.flush()
        if (db.reopen !== null) {
          await keyspace.close()
          keyspace = await db.reopen()
        }
        current = build(keyspace)
        return current.store
      },
      async close () {
        await current?.flush().catch(() => undefined)
        await keyspace?.close()
        await db?.dispose()
      }
    }
  }
}
