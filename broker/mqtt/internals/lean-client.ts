import type { Client } from 'aedes'
import { leaveWheel, moveToWheel } from './keepalive-wheel.js'
import { emptyFastObject, fastEvents, leanParser } from './lean-parser.js'
import { leanQueuePipe } from './queue-pipe.js'
import { shareSocketListeners } from './socket-listeners.js'

/*
 * Patch of Aedes 1.2 and mqtt-packet 9 internals (tripwire: "lean client" in
 * test/aedes-tripwires.test.ts). What an Aedes client allocates for every
 * connection and an idle device never uses (docs/benchmarks.md "Idle
 * connections"), as lib/client.js makes it:
 *
 * - `_inboundInflight`, a Set of the QoS 2 packet ids awaiting PUBREL
 *   (lib/handlers/publish.js `has`/`size`/`add`, pubrel.js `delete`).
 * - `duplicates`, the last delivered creation counter by broker id
 *   (lib/client.js `dedupe`: read and written by key), an
 *   `Object.create(null)`, which V8 keeps as a property dictionary from the
 *   start (GHSA-52qw-whmv-87c5: a name from the wire must not read an
 *   inherited property).
 * - `subscriptions`, the client's filters (lib/handlers/subscribe.js writes,
 *   unsubscribe.js deletes, client.js reads them by key and `Object.keys`),
 *   an `Object.create(null)` too, for the same reason.
 * - `_events`, the client's own listeners ('connected' once, 'error'), an
 *   EventEmitter's `{ __proto__: null }`: a property dictionary as well.
 * - `_pendingDrains`, the write callbacks waiting for the socket's 'drain'
 *   (`waitForDrain` pushes; `_handleDrain`, `_handleDrainTimeout` and
 *   `close` read it and put a new array in its place): an empty array per
 *   connection until a write is refused, shared until then.
 *
 * Also applied from here: lean-parser.ts (the parser's own allocations, its
 * buffer list and packet shared while idle),
 * socket-listeners.ts (the listeners Aedes makes per socket) and
 * keepalive-wheel.ts (one timer for every connection's keep-alive, moved
 * there when the CONNACK is sent; Aedes's `close` lets go of it) and, once
 * per process, queue-pipe.ts (CONNECT's empty queue without a `pipeline()`).
 */

interface ClientInternals {
  _parser?: { _list?: { length: number } }
  _pendingDrains?: unknown
  _inboundInflight?: unknown
  duplicates?: unknown
  subscriptions?: unknown
  _events?: Record<string, unknown>
  broker?: { on: (event: string, listener: (...args: never[]) => void) => unknown }
  close?: unknown
}

/**
 * A prototype with nothing on it and nothing behind it: an object made from
 * it reads every key as absent, `__proto__` and `constructor` included, as
 * `Object.create(null)` does, but starts with fast properties.
 */
const NOTHING_INHERITED: object = Object.freeze(Object.create(null) as object)

/** Every client's `_pendingDrains` until it first waits for a 'drain' (frozen: a push to it throws rather than reach another client). */
const NO_DRAINS: readonly unknown[] = Object.freeze([])

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
 * read: about 1.2 KB less per idle connection.
 */
export function leanClient (client: Client): void {
  const c = client as unknown as ClientInternals
  const parser = c._parser
  if (parser?._list?.length !== 0 || !(c._inboundInflight instanceof Set) || c._inboundInflight.size !== 0 ||
    !isEmptyDictionary(c.duplicates) || !isEmptyDictionary(c.subscriptions) || c._events === undefined || c.broker === undefined ||
    !Array.isArray(c._pendingDrains) || c._pendingDrains.length !== 0) {
    throw new Error('Aedes internals moved: client._parser._list, _inboundInflight, duplicates, subscriptions, _events, _pendingDrains and broker are needed (broker/mqtt/internals/lean-client.ts)')
  }
  sharePendingDrains(client)
  c._inboundInflight = new LazySet<number>()
  c.duplicates = Object.create(NOTHING_INHERITED) as object
  c.subscriptions = emptyFastObject()
  // 'connected' last: Aedes removes it once it fired, and V8 undoes the last addition without leaving fast mode.
  c._events = fastEvents(c._events, ['error', 'connected'])
  shareSocketListeners(client)
  leanParser(parser)
  useKeepaliveWheel(client)
  leanQueuePipe()
}

const drainsShared = new WeakSet<object>()

/** `client._pendingDrains` shared while empty; once per client class, `waitForDrain` gives a client its own array before pushing to it. */
function sharePendingDrains (client: Client): void {
  const proto = Object.getPrototypeOf(client) as { waitForDrain?: unknown }
  if (!drainsShared.has(proto)) {
    const waitForDrain = proto.waitForDrain
    if (typeof waitForDrain !== 'function') throw new Error('Aedes internals moved: Client.prototype.waitForDrain is needed (broker/mqtt/internals/lean-client.ts)')
    proto.waitForDrain = function waitForDrainOwnArray (this: ClientInternals, ...args: unknown[]) {
      if (this._pendingDrains === NO_DRAINS) this._pendingDrains = []
      return waitForDrain.apply(this, args) as unknown
    }
    drainsShared.add(proto)
  }
  ;(client as unknown as ClientInternals)._pendingDrains = NO_DRAINS
}

function isEmptyDictionary (value: unknown): boolean {
  return value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === null && Object.keys(value).length === 0
}

const wheeled = new WeakSet<object>()

/**
 * Once per broker: each client's keep-alive goes on the wheel when its
 * CONNACK is sent (lib/handlers/connect.js emits 'connackSent' after
 * `setKeepAlive` armed the Timeout). Once per client class: `close` takes
 * the client off the wheel at once.
 */
function useKeepaliveWheel (client: Client): void {
  const c = client as unknown as ClientInternals
  const broker = c.broker as NonNullable<ClientInternals['broker']>
  if (!wheeled.has(broker)) {
    broker.on('connackSent', (_packet: unknown, connected: Client) => { moveToWheel(connected) })
    wheeled.add(broker)
  }
  const proto = Object.getPrototypeOf(client) as { close?: unknown }
  if (!wheeled.has(proto)) {
    const aedesClose = proto.close
    if (typeof aedesClose !== 'function') throw new Error('Aedes internals moved: Client.prototype.close is needed (broker/mqtt/internals/lean-client.ts)')
    // Named `close`: lib/client.js binds it per connection, and socket-listeners.ts finds that one by its name, 'bound close'.
    proto.close = function close (this: Client, ...args: unknown[]) {
      leaveWheel(this)
      return aedesClose.apply(this, args) as unknown
    }
    wheeled.add(proto)
  }
}
