import { Level } from 'level'
import type { Logger } from 'pino'
import { prefixRange, type BatchWriter, type KeyValueStore, type RangeOptions, type StoreOp, type SublevelOp } from './store.js'

/**
 * Who owns what in the broker's one database: every sublevel, its owner, and
 * the root prefix its records had before sublevels (moved on open, see
 * `migrateLegacyLayout`). Key formats and who reads and writes each:
 * docs/keyspace.md. A store is handed only its own sublevels, never the
 * database. A sublevel named here is stored under the prefix `!{name}!`
 * (abstract-level's separator), which sorts apart from every legacy prefix.
 */
export const SUBLEVELS = {
  retained: { owner: 'aedes persistence', legacyPrefix: 'r:' },
  subscriptions: { owner: 'aedes persistence', legacyPrefix: 's:' },
  outgoing: { owner: 'aedes persistence', legacyPrefix: 'o:' },
  incoming: { owner: 'aedes persistence', legacyPrefix: 'i:' },
  wills: { owner: 'aedes persistence', legacyPrefix: 'w:' },
  journal: { owner: 'publish journal', legacyPrefix: 'j:' },
  'group-definitions': { owner: 'shared-subscription groups', legacyPrefix: 'gd:' },
  'group-messages': { owner: 'shared-subscription groups', legacyPrefix: 'gm:' },
  delayed: { owner: 'delayed messages', legacyPrefix: 'dq:' },
  schedules: { owner: 'scheduler', legacyPrefix: 'sc:' },
  'idempotency-keys': { owner: 'task gate', legacyPrefix: 'ik:' }
} as const satisfies Record<string, { owner: string, legacyPrefix?: string }>

/**
 * The flat prefixes of the layout before sublevels: a short name and ':'. A
 * sublevel added later has none; an empty or other prefix would match
 * sublevel keys (`!name!...`) and move them, so it is refused.
 */
const LEGACY_PREFIX = /^[a-z]{1,2}:$/

export type SublevelName = keyof typeof SUBLEVELS

const ENCODINGS = { keyEncoding: 'utf8', valueEncoding: 'buffer' } as const

/** Keys moved per batch when migrating: bounded memory, whatever the backlog. */
const MIGRATION_BATCH = 1000

/** The slice of an abstract-level root database the keyspace uses. */
interface RootDatabase {
  open (): Promise<void>
  close (): Promise<void>
  sublevel (name: string, options: typeof ENCODINGS): KeyValueStore
  batch (ops: Array<StoreOp | SublevelOp>): Promise<void>
  iterator (options: RangeOptions): { all (): Promise<Array<[string, Buffer]>> }
}

export interface KeyspaceOptions {
  /** LevelDB directory; without it the keyspace lives in memory (memory-level). */
  location?: string
  /** Where the one-time move of a previous layout is logged. */
  logger?: Logger
}

/**
 * The broker's database (LevelDB on disk, memory-level in memory), split into
 * one sublevel per owner. Opened by an async factory, which also moves data
 * written by the previous layout; closed once, by whoever holds it (the
 * broker closes its Aedes persistence last, and that closes the keyspace).
 */
export class Keyspace {
  readonly #db: RootDatabase
  readonly #sublevels = new Map<SublevelName, KeyValueStore>()
  /** Every sublevel handed out, for the writer's check. */
  readonly #owned = new Set<KeyValueStore>()
  #closed: Promise<void> | null = null
  /** The LevelDB directory, or null in memory. */
  readonly location: string | null

  /**
   * Batches that span sublevels, atomically: abstract-level's cross-sublevel
   * batch on the root (`{ type, sublevel, key, value }`). Every op must name
   * a sublevel of this keyspace, so whoever holds the writer writes only
   * where it was handed a sublevel, never at the root.
   */
  readonly writer: BatchWriter

  private constructor (db: RootDatabase, location: string | null) {
    this.#db = db
    this.location = location
    this.writer = {
      batch: async (ops) => {
        for (const op of ops) {
          if (!this.#owned.has(op.sublevel)) throw new TypeError(`a keyspace batch op must name a sublevel of this keyspace (key ${op.key})`)
        }
        await db.batch(ops)
      }
    }
  }

  /** Opens the database (creating it if missing) and moves data left at the root by the previous layout. */
  static async open (options: KeyspaceOptions = {}): Promise<Keyspace> {
    // memory-level is loaded only for a keyspace in memory (docs/benchmarks.md, "The broker's RSS").
    const db = options.location === undefined
      ? new (await import('memory-level')).MemoryLevel<string, Buffer>(ENCODINGS) as unknown as RootDatabase
      : new Level<string, Buffer>(options.location, ENCODINGS) as unknown as RootDatabase
    const keyspace = new Keyspace(db, options.location ?? null)
    await db.open()
    try {
      await keyspace.#migrateLegacyLayout(options.logger)
    } catch (err) {
      await db.close().catch(() => undefined)
      throw err
    }
    return keyspace
  }

  /** The owner's sublevel (one instance per name). Hand it only to its owner. */
  sublevel (name: SublevelName): KeyValueStore {
    let sublevel = this.#sublevels.get(name)
    if (sublevel === undefined) {
      sublevel = this.#db.sublevel(name, ENCODINGS)
      this.#sublevels.set(name, sublevel)
      this.#owned.add(sublevel)
    }
    return sublevel
  }

  /** Closes the database; safe to call more than once. Writes still queued by stores must be flushed first. */
  close (): Promise<void> {
    this.#closed ??= this.#db.close()
    return this.#closed
  }

  /**
   * Before sublevels, every owner wrote at the root under a short prefix
   * (`r:{topic}`, `gm:{group}:{seq}`, ...). The key inside each sublevel is
   * that key without its prefix, so moving is a rename. Each batch puts and
   * deletes the same keys, so a crash mid-way leaves every record in exactly
   * one place and the next open carries on. Costs one seek per prefix once
   * there is nothing left to move.
   */
  async #migrateLegacyLayout (logger: Logger | undefined): Promise<void> {
    const moved: Record<string, number> = {}
    let total = 0
    for (const [name, { legacyPrefix }] of Object.entries(SUBLEVELS) as Array<[SublevelName, { legacyPrefix?: string }]>) {
      if (legacyPrefix === undefined) continue
      if (!LEGACY_PREFIX.test(legacyPrefix)) throw new Error(`keyspace: legacy prefix "${legacyPrefix}" of sublevel ${name} is not a short name and ':'`)
      const sublevel = this.sublevel(name)
      for (;;) {
        const entries = await this.#db.iterator({ ...prefixRange(legacyPrefix), limit: MIGRATION_BATCH }).all()
        if (entries.length === 0) break
        const ops: Array<StoreOp | SublevelOp> = []
        for (const [key, value] of entries) {
          ops.push({ type: 'put', sublevel, key: key.slice(legacyPrefix.length), value })
          ops.push({ type: 'del', key })
        }
        await this.#db.batch(ops)
        moved[name] = (moved[name] ?? 0) + entries.length
        total += entries.length
      }
    }
    if (total > 0) logger?.info({ moved, total, location: this.location }, 'moved data from the previous key layout into sublevels (docs/keyspace.md)')
  }
}
