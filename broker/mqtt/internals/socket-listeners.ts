import type { Client } from 'aedes'
import { Socket } from 'node:net'

/*
 * Patch of Aedes 1.2 internals (tripwire: "socket listeners" in
 * test/aedes-tripwires.test.ts). lib/client.js's constructor listens to its
 * connection with functions made for it:
 *
 *   conn.on('error', this.emit.bind(this, 'error'))
 *   this._parser.on('error', this.emit.bind(this, 'error'))
 *   conn.on('end', this.close.bind(this))
 *   this._eos = finished(this.conn, this.close.bind(this))
 *
 * `finished` (node:stream) adds four listeners and makes seven closures and
 * their context; with the three bound functions that is about 900 bytes per
 * connection (docs/benchmarks.md "Idle connections"). `client.close()` calls
 * `_eos()`, which removes finished's listeners, then sets it to a no-op.
 *
 * For a TCP or TLS socket they are replaced by functions shared by every
 * connection, which find the client on `conn.client` (set by the same
 * constructor) and the parser's on `parser.client`. 'close' stands in for
 * `finished`: a net.Socket emits it once whatever ended it (an error, both
 * sides ended, a destroy), and `close()` is idempotent. A WebSocket's byte
 * stream (ws `createWebSocketStream`) emits no 'close' (emitClose is off):
 * it keeps Aedes's own listeners. Where the socket has one listener of its
 * own already for 'end' (net.js's) or 'close' (the connection limits'),
 * one shared function calls that one and then ours, in the order they were
 * added, so the socket keeps no listener array for the event.
 */

interface OwnedStream { client?: { emit: (event: string, err: unknown) => boolean, close: () => void } }
/** An EventEmitter's listeners by event: one function, or an array of them in the order added. */
type Listener = (...args: never[]) => unknown
type Listeners = Record<string, Listener | Listener[] | undefined>
interface ClientInternals {
  conn: unknown
  _eos: () => void
  _parser: { client?: unknown, _events: Listeners, removeListener: (event: string, f: Listener) => unknown, on: (event: string, f: Listener) => unknown }
}

function emitOnClient (this: OwnedStream, err: unknown): void {
  this.client?.emit('error', err)
}

function closeClient (this: OwnedStream): void {
  this.client?.close()
}

function noop (): void {}

/**
 * net.js's own 'end' listener (`onReadableStreamEnd`, added by the Socket
 * constructor, one function for every socket), once seen on a plain TCP
 * socket; and one function calling it and then {@link closeClient}, in the
 * order the two listeners ran: with one 'end' listener instead of two the
 * socket keeps no listener array (about 30 bytes per idle connection,
 * docs/benchmarks.md "Idle connections").
 */
let nodeEnd: Listener | undefined
function endThenCloseClient (this: OwnedStream): void {
  (nodeEnd as (this: OwnedStream) => void).call(this)
  closeClient.call(this)
}

/**
 * For a socket with one 'close' listener already (the connection limits'
 * count, broker/security/connection-limits.ts: one function for every socket
 * of a broker), one function calling it and then {@link closeClient}, made
 * once per such listener: again no listener array per socket. Keyed weakly,
 * as brokers come and go (the tests).
 */
const combinedCloses = new WeakMap<Listener, (this: OwnedStream) => void>()
function combinedClose (first: Listener): (this: OwnedStream) => void {
  let combined = combinedCloses.get(first)
  if (combined === undefined) {
    const run = first as (this: OwnedStream) => void
    const self: (this: OwnedStream & Socket) => void = function closeThenCloseClient (this: OwnedStream & Socket): void {
      // Once, as `first` would have been: it removes itself (the connection
      // limits release a socket exactly once, however often it reports
      // closing), which finds nothing now that it is not registered itself.
      this.removeListener('close', self)
      run.call(this)
      closeClient.call(this)
    }
    combined = self as (this: OwnedStream) => void
    combinedCloses.set(first, combined)
  }
  return combined
}

/** The listener added last for an event, if it has the name given (a bound function's is 'bound ' and its target's). */
function lastOf (listeners: Listener | Listener[] | undefined, name: string): Listener | undefined {
  const last = Array.isArray(listeners) ? listeners[listeners.length - 1] : listeners
  return last?.name === name ? last : undefined
}

/** Replaces the listeners Aedes made for `client`'s socket and parser with shared ones; false (nothing changed) for a stream that is not a net.Socket. */
export function shareSocketListeners (client: Client): boolean {
  const c = client as unknown as ClientInternals
  const conn = c.conn
  if (!(conn instanceof Socket)) return false
  const parser = c._parser
  if ((conn as OwnedStream).client !== client || parser.client !== client || typeof c._eos !== 'function') {
    throw new Error('Aedes internals moved: conn.client, _parser.client and _eos are needed (broker/mqtt/internals/socket-listeners.ts)')
  }
  c._eos()
  c._eos = noop
  // With finished's gone, Aedes's are the last 'error' and 'end' listeners
  // added (Node's own, net.js onReadableStreamEnd and a TLS socket's, come
  // first). Read from `_events`, not `rawListeners()`: that copies arrays.
  const events = (conn as unknown as { _events: Listeners })._events
  const connError = lastOf(events.error, 'bound emit')
  const connEnd = lastOf(events.end, 'bound close')
  const parserError = lastOf(parser._events.error, 'bound emit')
  if (connError === undefined || connEnd === undefined || parserError === undefined) {
    throw new Error("Aedes internals moved: its bound 'error' listeners on the socket and the parser and 'end' listener on the socket are needed (broker/mqtt/internals/socket-listeners.ts)")
  }
  conn.removeListener('error', connError as () => void)
  conn.removeListener('end', connEnd as () => void)
  parser.removeListener('error', parserError)
  conn.on('error', emitOnClient)
  const end = events.end
  if (typeof end === 'function' && end.name === 'onReadableStreamEnd' && (nodeEnd === undefined || end === nodeEnd)) {
    nodeEnd = end
    conn.removeListener('end', end as () => void)
    conn.on('end', endThenCloseClient)
  } else {
    conn.on('end', closeClient)
  }
  const close = events.close
  // Not a `once` listener (its wrapper removes itself by reference) and not one made per socket.
  if (typeof close === 'function' && !('listener' in close) && close.name === 'released') {
    conn.removeListener('close', close as () => void)
    conn.on('close', combinedClose(close))
  } else {
    conn.on('close', closeClient)
  }
  parser.on('error', emitOnClient)
  return true
}
