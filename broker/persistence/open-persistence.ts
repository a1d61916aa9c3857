import { constants } from 'node:fs'
import { access, mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Logger } from 'pino'
import { DataDirError, ErrorCodes, FleetqError, PersistenceError } from '../../protocol/errors.js'
import type { ResolvedBrokerOptions } from '../options.js'
import { LevelDelayedStore, type DelayedStore } from '../scheduler/delayed-store.js'
import { LevelScheduleStore, type ScheduleStore } from '../scheduler/schedule-store.js'
import type { GroupStore } from '../shared/group-store.js'
import { LevelGroupStore } from '../shared/level-group-store.js'
import { LevelIdempotencyStore, type IdempotencyStore } from '../tasks/idempotency-keys.js'
import { LevelJournalStore, type JournalStore } from './journal-store.js'
import { Keyspace } from './keyspace.js'
import { LevelPersistence, type LevelPersistenceOptions } from './level-persistence.js'
import { WriteBatcher } from './write-batcher.js'

/**
 * Every store of the broker, each on its own sublevels of one keyspace
 * (docs/keyspace.md). Each is typed by its interface, so another backend (Redis)
 * can provide the same set; each interface has a conformance suite in
 * test/conformance/.
 */
export interface BrokerStores {
  /**
   * Aedes's persistence: sessions, subscriptions, retained messages, queues,
   * wills. Its `destroy()` closes the database, so it is closed last.
   */
  persistence: LevelPersistence
  journal: JournalStore
  groups: GroupStore
  delayed: DelayedStore
  /** Its `commitTick` writes to the delayed store above, atomically. */
  schedules: ScheduleStore
  idempotency: IdempotencyStore
}

/**
 * Opens the database the options ask for (LevelDB in `dataDir`, or memory),
 * moving data of the previous key layout into sublevels, and builds every
 * store on it. A locked or unwritable data directory is reported as such.
 */
export async function createStores (options: ResolvedBrokerOptions, logger: Logger): Promise<BrokerStores> {
  let keyspace: Keyspace
  if (options.persistence === 'memory') {
    keyspace = await Keyspace.open({ logger })
  } else {
    const dataDir = resolve(options.dataDir)
    await ensureWritableDir(dataDir)
    try {
      keyspace = await Keyspace.open({ location: dataDir, logger })
    } catch (err) {
      throw classifyOpenError(err, options)
    }
  }
  const { persistence, journal } = createSessionStores(keyspace, {
    maxQueuedPerClient: options.maxQueuedPerClient,
    trackDeliveries: true
  })
  const delayed = new LevelDelayedStore(keyspace.sublevel('delayed'), keyspace.writer)
  return {
    persistence,
    journal,
    groups: new LevelGroupStore({ definitions: keyspace.sublevel('group-definitions'), messages: keyspace.sublevel('group-messages') }, keyspace.writer),
    delayed,
    schedules: new LevelScheduleStore(keyspace.sublevel('schedules'), delayed),
    idempotency: new LevelIdempotencyStore(keyspace.sublevel('idempotency-keys'), keyspace.writer)
  }
}

/**
 * The Aedes persistence and the publish journal on `keyspace`. They share one
 * write batcher, so a QoS 1 publish's journal entry, queue entries and journal
 * delete coalesce into the same batches (write-batcher.ts). Destroying the
 * persistence closes the keyspace.
 */
export function createSessionStores (keyspace: Keyspace, options: LevelPersistenceOptions = {}): { persistence: LevelPersistence, journal: LevelJournalStore } {
  const writes = WriteBatcher.for(keyspace.writer)
  const persistence = new LevelPersistence({
    retained: keyspace.sublevel('retained'),
    subscriptions: keyspace.sublevel('subscriptions'),
    outgoing: keyspace.sublevel('outgoing'),
    incoming: keyspace.sublevel('incoming'),
    wills: keyspace.sublevel('wills'),
    writes,
    close: () => keyspace.close()
  }, options)
  return { persistence, journal: new LevelJournalStore(keyspace.sublevel('journal'), writes) }
}

async function ensureWritableDir (dataDir: string): Promise<void> {
  try {
    await mkdir(dataDir, { recursive: true })
    await access(dataDir, constants.W_OK | constants.R_OK | constants.X_OK)
  } catch (cause) {
    throw new DataDirError(ErrorCodes.DATA_DIR_NOT_WRITABLE, dataDir,
      `data directory ${dataDir} is not writable: ${(cause as Error).message}`, { cause })
  }
}

/** Maps a failure of LevelDB's open to a fleetq error; a fleetq error passes through. */
export function classifyOpenError (err: unknown, options: Pick<ResolvedBrokerOptions, 'dataDir'>): Error {
  if (err instanceof FleetqError) return err
  const dataDir = resolve(options.dataDir)
  const cause = (err as { cause?: { code?: string, message?: string } }).cause
  // classic-level reports another process's lock as LEVEL_LOCKED, and
  // permission problems as LEVEL_IO_ERROR with the OS message.
  if (cause?.code === 'LEVEL_LOCKED') {
    return new DataDirError(ErrorCodes.DATA_DIR_LOCKED, dataDir,
      `data directory ${dataDir} is in use by another broker (LevelDB lock held)`, { cause: err })
  }
  if (cause?.code === 'LEVEL_IO_ERROR' && /Permission denied|Read-only file system/i.test(cause.message ?? '')) {
    return new DataDirError(ErrorCodes.DATA_DIR_NOT_WRITABLE, dataDir, `data directory ${dataDir} is not writable: ${cause.message ?? ''}`, { cause: err })
  }
  return new PersistenceError(`could not open the store in ${dataDir}: ${(err as Error).message}`, { cause: err })
}
