import type { Client } from 'aedes'
import { createRequire } from 'node:module'

/*
 * Patch of Aedes 1.2 and mqtt-packet 9 internals (tripwire: "lean client" in
 * test/aedes-tripwires.test.ts). What an Aedes client allocates for every
 * connection and an idle device never uses (docs/benchmarks.md "Idle
 * connections"), as lib/client.js makes it:
 *
 * - `_parser._list`, the bytes read and not yet parsed, made by mqtt-packet's
 *   `bl()`: a BufferListStream, a whole readable-stream Duplex (two stream
 *   states, an event emitter) on which parser.js only ever calls BufferList
 *   methods (`append`, `consume`, `length`, `readUInt8`, `slice`...).
 * - `_inboundInflight`, a Set of the QoS 2 packet ids awaiting PUBREL
 *   (lib/handlers/publish.js `has`/`size`/`add`, pubrel.js `delete`).
 * - `duplicates`, the last delivered creation counter by broker id
 *   (lib/client.js `dedupe`: read and written by key), an
 *   `Object.create(null)`, which V8 keeps as a property dictionary from the
 *   start (GHSA-52qw-whmv-87c5: a name from the wire must not read an
 *   inherited property).
 */

interface ClientInternals {
  _parser?: { _list?: { length: number } }
  _inboundInflight?: unknown
  duplicates?: unknown
}

type BufferListClass = new () => { length: number }

/** bl's BufferList, as mqtt-packet resolves it (bl is its dependency, not ours). */
const BufferList = createRequire(createRequire(import.meta.url).resolve('mqtt-packet'))('bl').BufferList as BufferListClass

/**
 * A prototype with nothing on it and nothing behind it: an object made from
 * it reads every key as absent, `__proto__` and `constructor` included, as
 * `Object.create(null)` does, but starts with fast properties.
 */
const NOTHING_INHERITED: object = Object.freeze(Object.create(null) as object)

/** A Set made on the first `add`: most connections never have a QoS 2 packet in flight. */
export class LazySet<T> {
  #set: Set<T> | undefined

  get size (): number {
    return this.#set === undefined ? 0 : this.#set.size
  }

  has (value: T): boolean {
    return this.#set !== undefined && this.#set.has(value)
  }

  add (value: T): this {
    (this.#set ??= new Set()).add(value)
    return this
  }

  delete (value: T): boolean {
    return this.#set !== undefined && this.#set.delete(value)
  }
}

/**
 * Replaces what `client` allocated and does not need yet with smaller
 * equivalents, right after Aedes creates it and before its first byte is
 * read: about 1.2 KB less per idle connection. mqtt-packet makes a new
 * BufferListStream only after a parse error, which closes the connection.
 */
export function leanClient (client: Client): void {
  const c = client as unknown as ClientInternals
  const parser = c._parser
  if (parser?._list?.length !== 0 || !(c._inboundInflight instanceof Set) || c._inboundInflight.size !== 0 ||
    c.duplicates === null || typeof c.duplicates !== 'object' || Object.getPrototypeOf(c.duplicates) !== null) {
    throw new Error('Aedes internals moved: client._parser._list, _inboundInflight and duplicates are needed (broker/mqtt/internals/lean-client.ts)')
  }
  parser._list = new BufferList()
  c._inboundInflight = new LazySet<number>()
  c.duplicates = Object.create(NOTHING_INHERITED) as object
}
