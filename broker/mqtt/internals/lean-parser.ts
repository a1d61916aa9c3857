import { requireFromMqttPacket } from './mqtt-packet-require.js'
import { withDirectReads } from './read-list.js'

/*
 * Patch of mqtt-packet 9 internals (tripwire: "lean parser" in
 * test/aedes-tripwires.test.ts, and "lean parser" in test/connect-path.test.ts). Each Aedes
 * client has its own parser (lib/client.js `mqtt.parser()`), which keeps, for
 * as long as the connection lives (docs/benchmarks.md "Idle connections"):
 *
 * - `_states`, the names of its four parse steps, a new array per parser;
 * - `settings`, which `_parseConnect` sets to the whole CONNECT packet (client
 *   id, user name, password, will) although the parser reads only its
 *   `protocolVersion` and `bridgeMode` from it afterwards;
 * - `_events`, an EventEmitter's `{ __proto__: null }`, which V8 makes a
 *   property dictionary from the start;
 * - `_list`, the bytes read and not yet parsed, and `packet`, the packet being
 *   parsed: made by `_resetState` and again after each packet (`_newPacket`),
 *   though an idle connection has neither bytes nor a packet under way.
 *   `_resetState` makes `_list` with bl's `bl()`, a BufferListStream: a whole
 *   readable-stream Duplex (two stream states, an event emitter) on which
 *   parser.js only calls BufferList methods (`append`, `consume`, `length`,
 *   `readUInt8`, `slice`...); building it was about 15 µs of each connect.
 */

interface ParserInternals {
  _states: unknown
  settings: unknown
  client?: unknown
  packet: unknown
  error: unknown
  _list: { length: number }
  _stateCounter: number
  _parseConnect: (this: ParserInternals) => unknown
  _resetState: (this: ParserInternals) => void
  parse: (this: ParserInternals, buf: Buffer) => number
}

type BufferListClass = new () => { length: number }
/** bl's BufferList, as mqtt-packet resolves it (bl is its dependency, not ours), with reads that allocate nothing (read-list.ts). */
const BufferList = withDirectReads(requireFromMqttPacket('bl').BufferList as BufferListClass)
/** mqtt-packet's Packet: what `parser.packet` is between packets. */
const Packet = requireFromMqttPacket('./packet') as new () => { length: number }

/**
 * What an Aedes parser holds between reads when no packet is under way: one
 * empty list and one fresh packet for every idle connection. Never written:
 * `parse` gives the parser its own before parsing (see patchParse).
 */
export const IDLE_LIST: Readonly<{ length: number }> = Object.freeze(Object.assign(new BufferList(), { _bufs: Object.freeze([]) }))
export const IDLE_PACKET: Readonly<{ length: number }> = Object.freeze(new Packet())

/** mqtt-packet's parse steps, in the order parser.js runs them. */
const STATES: readonly string[] = Object.freeze(['_parseHeader', '_parseLength', '_parsePayload', '_newPacket'])

type Settings = Readonly<{ protocolVersion: number, bridgeMode: boolean }>
const sharedSettings = new Map<string, Settings>()

/** One frozen settings object per protocol version and bridge mode, shared by every parser. */
function settingsFor (protocolVersion: number, bridgeMode: boolean): Settings {
  const key = `${protocolVersion}:${String(bridgeMode)}`
  let settings = sharedSettings.get(key)
  if (settings === undefined) {
    settings = Object.freeze({ protocolVersion, bridgeMode })
    sharedSettings.set(key, settings)
  }
  return settings
}

const patched = new WeakSet<object>()

/**
 * What parser.js `_resetState` does, with a plain BufferList where it makes a
 * BufferListStream; the same fields in the same order, so parsers keep one
 * shape. Every parser of this mqtt-packet gets it (mqtt.js clients in the
 * same process too): it is called at construction, before Aedes sets
 * `parser.client`, and again after a parse error.
 */
function leanResetState (this: ParserInternals): void {
  this.packet = new Packet()
  this.error = null
  this._list = new BufferList()
  this._stateCounter = 0
}

/** Nested `parse` calls in progress (a handler that reads again from inside a 'packet' event): only the outermost lets go. */
let parsing = 0

/**
 * `parse` for a parser an Aedes client reads with (`parser.client`): given
 * its own list and packet if it was idle, and left idle again when the bytes
 * read ended on a packet boundary (nothing buffered, the first step next,
 * no error). About 250 bytes less per idle connection: the list, its array's
 * backing store (kept at its largest by `shift()`), the packet.
 */
function patchParse (parse: ParserInternals['parse']): ParserInternals['parse'] {
  return function (this: ParserInternals, buf: Buffer): number {
    if (this._list === IDLE_LIST) {
      this._list = new BufferList()
      this.packet = new Packet()
    }
    parsing++
    let left: number
    try {
      left = parse.call(this, buf)
    } finally {
      parsing--
    }
    if (left === 0 && parsing === 0 && this._stateCounter === 0 && this.error === null && this.client !== undefined) {
      this._list = IDLE_LIST
      this.packet = IDLE_PACKET
    }
    return left
  }
}

/**
 * Once per parser class, on its prototype: nothing per connection. After a
 * CONNECT, a parser an Aedes client reads with (`parser.client`, set by
 * lib/client.js) keeps only what it reads of it, and between packets it
 * holds the shared idle list and packet. Parsers without a client (an
 * mqtt.js client's in the same process) get only the lean `_resetState`.
 */
function patchParser (proto: ParserInternals): void {
  if (patched.has(proto)) return
  const parseConnect = proto._parseConnect
  const parse = proto.parse
  if (typeof parseConnect !== 'function' || typeof proto._resetState !== 'function' || typeof parse !== 'function') {
    throw new Error('Aedes internals moved: mqtt-packet parser._parseConnect, _resetState and parse are needed (broker/mqtt/internals/lean-parser.ts)')
  }
  proto._resetState = leanResetState
  proto.parse = patchParse(parse)
  proto._parseConnect = function (this: ParserInternals) {
    const packet = parseConnect.call(this) as { protocolVersion?: unknown, bridgeMode?: unknown } | undefined
    if (this.client !== undefined && packet !== undefined && this.settings === packet && typeof packet.protocolVersion === 'number') {
      this.settings = settingsFor(packet.protocolVersion, packet.bridgeMode === true)
    }
    return packet
  }
  patched.add(proto)
}

/**
 * An empty object with no prototype, as `Object.create(null)` and
 * `{ __proto__: null }` make, but which V8 starts with fast properties: those
 * two make a property dictionary (about 160 bytes) from the start, an
 * ordinary object given a null prototype afterwards stays fast.
 */
export function emptyFastObject<T> (): Record<string, T> {
  return Object.setPrototypeOf({}, null) as Record<string, T>
}

/**
 * The same listeners in an object V8 keeps with fast properties, with no
 * prototype as Node's own `{ __proto__: null }`. Listed in the
 * order given: removing the last one added leaves it fast (V8 undoes that
 * transition), removing another makes it a dictionary again.
 */
export function fastEvents (events: Record<string, unknown>, order: readonly string[]): Record<string, unknown> {
  const names = Object.keys(events)
  if (names.length !== order.length || !order.every((name) => names.includes(name))) {
    throw new Error(`Aedes internals moved: listeners for ${order.join(', ')} expected, found ${names.join(', ')} (broker/mqtt/internals/lean-parser.ts)`)
  }
  const fast = emptyFastObject<unknown>()
  for (const name of order) fast[name] = events[name]
  return fast
}

/** Makes `parser` (an Aedes client's, not yet read from) share what it can. */
export function leanParser (parser: object): void {
  const p = parser as ParserInternals & { _events?: Record<string, unknown> }
  const states = p._states
  if (!Array.isArray(states) || states.length !== STATES.length || !states.every((s, i) => s === STATES[i]) || p._events === undefined) {
    throw new Error('Aedes internals moved: mqtt-packet parser._states and _events are needed (broker/mqtt/internals/lean-parser.ts)')
  }
  patchParser(Object.getPrototypeOf(parser) as ParserInternals)
  p._states = STATES
  p._events = fastEvents(p._events, ['packet', 'error'])
  if (p._list.length === 0 && p._stateCounter === 0 && p.error === null) {
    p._list = IDLE_LIST
    p.packet = IDLE_PACKET
  }
}
