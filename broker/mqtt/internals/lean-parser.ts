/*
 * Patch of mqtt-packet 9 internals (tripwire: "lean parser" in
 * test/aedes-tripwires.test.ts). Each Aedes client has its own parser
 * (lib/client.js `mqtt.parser()`), which keeps, for as long as the
 * connection lives (docs/benchmarks.md "Idle connections"):
 *
 * - `_states`, the names of its four parse steps, a new array per parser;
 * - `settings`, which `_parseConnect` sets to the whole CONNECT packet (client
 *   id, user name, password, will) although the parser reads only its
 *   `protocolVersion` and `bridgeMode` from it afterwards;
 * - `_events`, an EventEmitter's `{ __proto__: null }`, which V8 makes a
 *   property dictionary from the start.
 */

interface ParserInternals {
  _states: unknown
  settings: unknown
  client?: unknown
  _parseConnect: (this: ParserInternals) => unknown
}

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
 * After a CONNECT, a parser an Aedes client reads with (`parser.client`, set
 * by lib/client.js) keeps only what it reads of it. Once per parser class,
 * on its prototype: nothing per connection. Parsers without a client (an
 * mqtt.js client's in the same process) are left as they were.
 */
function patchParseConnect (proto: ParserInternals): void {
  if (patched.has(proto)) return
  const parseConnect = proto._parseConnect
  if (typeof parseConnect !== 'function') {
    throw new Error('Aedes internals moved: mqtt-packet parser._parseConnect is needed (broker/mqtt/internals/lean-parser.ts)')
  }
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
  patchParseConnect(Object.getPrototypeOf(parser) as ParserInternals)
  p._states = STATES
  p._events = fastEvents(p._events, ['packet', 'error'])
}
