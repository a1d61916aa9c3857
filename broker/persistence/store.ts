/** A write to one store (a sublevel), for {@link KeyValueStore.batch}. */
export type StoreOp =
  | { type: 'put', key: string, value: Buffer }
  | { type: 'del', key: string }

/**
 * A write that names its sublevel, for {@link BatchWriter}: writes to several
 * sublevels then land in one atomic batch (abstract-level's cross-sublevel
 * batch, `{ type, sublevel, key, value }` on the root).
 */
export type SublevelOp = StoreOp & { sublevel: KeyValueStore }

export interface RangeOptions {
  gt?: string
  gte?: string
  lt?: string
  lte?: string
  reverse?: boolean
  limit?: number
}

/**
 * One owner's part of the broker's database: an abstract-level sublevel with
 * string keys and buffer values (LevelDB on disk, memory-level for
 * `--persistence memory`). Keys and ranges are relative to the sublevel, so a
 * store sees only its own records. Who owns which: broker/persistence/keyspace.ts
 * and docs/keyspace.md.
 */
export interface KeyValueStore {
  get (key: string): Promise<Buffer | undefined>
  batch (ops: StoreOp[]): Promise<void>
  iterator (options?: RangeOptions): AsyncIterable<[string, Buffer]>
  keys (options?: RangeOptions): AsyncIterable<string>
}

/**
 * Writes one atomic batch that may span sublevels. The capability a store
 * gets instead of the database: it can write only to sublevels it was handed.
 */
export interface BatchWriter {
  batch (ops: SublevelOp[]): Promise<void>
}

/**
 * Range over every key under `prefix` (which ends with ':'). The upper bound
 * swaps the final ':' for ';', the next byte, so nothing outside the prefix
 * sorts inside the range, whatever bytes follow (UTF-8 topics included).
 */
export function prefixRange (prefix: string): { gte: string, lt: string } {
  return { gte: prefix, lt: `${prefix.slice(0, -1)};` }
}
