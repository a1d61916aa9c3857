import { constants } from 'node:fs'
import { access, mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import { DataDirError, ErrorCodes, PersistenceError } from '../../protocol/errors.js'
import type { ResolvedBrokerOptions } from '../options.js'
import { LevelPersistence } from './level-persistence.js'
import { openLevelStore, openMemoryStore, type KeyValueStore } from './store.js'

/**
 * Builds the persistence the options ask for. The store itself is opened by
 * Aedes (`setup`); `classifyOpenError` turns LevelDB's open failures into
 * errors that say what to do.
 */
export async function createPersistence (options: ResolvedBrokerOptions): Promise<LevelPersistence> {
  let store: KeyValueStore
  if (options.persistence === 'memory') {
    store = openMemoryStore()
  } else {
    const dataDir = resolve(options.dataDir)
    await ensureWritableDir(dataDir)
    store = openLevelStore(dataDir)
  }
  return new LevelPersistence(store, {
    maxQueuedPerClient: options.maxQueuedPerClient,
    trackDeliveries: true
  })
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

/** Maps a failure of LevelDB's open to a fleetq error. */
export function classifyOpenError (err: unknown, options: ResolvedBrokerOptions): Error {
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
