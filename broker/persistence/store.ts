import { Level } from 'level'
import { MemoryLevel } from 'memory-level'

/** A write for {@link KeyValueStore.batch}. */
export type StoreOp =
  | { type: 'put', key: string, value: Buffer }
  | { type: 'del', key: string }

export interface RangeOptions {
  gte?: string
  lt?: string
  reverse?: boolean
  limit?: number
}

/**
 * The slice of abstract-level that fleetq's stores use: LevelDB on disk,
 * memory-level for `--persistence memory`, and any other abstract-level
 * database with string keys and buffer values.
 */
export interface KeyValueStore {
  open (): Promise<void>
  close (): Promise<void>
  get (key: string): Promise<Buffer | undefined>
  batch (ops: StoreOp[]): Promise<void>
  iterator (options: RangeOptions): AsyncIterable<[string, Buffer]>
  keys (options: RangeOptions): AsyncIterable<string>
}

const encodings = { keyEncoding: 'utf8', valueEncoding: 'buffer' } as const

export function openLevelStore (dataDir: string): KeyValueStore {
  return new Level<string, Buffer>(dataDir, encodings) as unknown as KeyValueStore
}

export function openMemoryStore (): KeyValueStore {
  return new MemoryLevel<string, Buffer>(encodings) as unknown as KeyValueStore
}

/**
 * Range over every key under `prefix` (which ends with ':'). The upper bound
 * swaps the final ':' for ';', the next byte, so nothing outside the prefix
 * sorts inside the range, whatever bytes follow (UTF-8 topics included).
 */
export function prefixRange (prefix: string): { gte: string, lt: string } {
  return { gte: prefix, lt: `${prefix.slice(0, -1)};` }
}
