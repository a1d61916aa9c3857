import type { Client } from 'aedes'
import { peerOf } from '../../listeners/peer.js'
import type { LimitCounters } from '../../security/limit-counters.js'

/*
 * Patch of Aedes 1.2 internals (tripwire: "max packet size" in
 * test/aedes-tripwires.test.ts): each Aedes client parses its connection
 * with its own mqtt-packet parser, `client._parser` (lib/client.js), whose
 * states run `_parseHeader` → `_parseLength` → `_parsePayload`. After
 * `_parseLength` returns true, `packet.length` holds the Remaining Length and
 * the length bytes are consumed from `_list`; `_emitError` sets `error`
 * (which stops the parse loop) and emits 'error', which Aedes turns into
 * `client._onError`: the socket is destroyed and the client closed; Aedes
 * sets `_parser.client` to the client it reads for.
 */
interface ParserInternals {
  _parseLength: () => boolean
  _emitError: (err: Error) => void
  _list: { length: number }
  packet: { cmd?: string, length: number }
  /** Set by Aedes's Client constructor: the client this parser reads for. */
  client?: Client
}

/** The fixed header's first byte: packet type and flags [MQTT-2.2]. */
const FIRST_BYTE = 1

type ParseLength = (this: ParserInternals) => boolean

/**
 * The patched `_parseLength` of the last settings asked for. One function is
 * shared by every connection with the same settings (a broker has one), not a
 * closure per connection: an idle connection's memory is what
 * docs/benchmarks.md "Idle connections" counts.
 */
let shared: { maxBytes: number, counters: LimitCounters | undefined, parseLength: ParseLength, patched: ParseLength } | null = null

function patchedParseLength (parseLength: ParseLength, maxBytes: number, counters: LimitCounters | undefined): ParseLength {
  if (shared?.maxBytes === maxBytes && shared.counters === counters && shared.parseLength === parseLength) return shared.patched
  const patched = function parseLengthWithin (this: ParserInternals): boolean {
    const buffered = this._list.length
    if (!parseLength.call(this)) return false
    const bytes = FIRST_BYTE + (buffered - this._list.length) + this.packet.length
    if (bytes <= maxBytes) return true
    const client = this.client
    const offender = (client?.id as string | null | undefined) ?? (client === undefined ? undefined : peerOf(client.conn)?.remoteAddress) ?? 'unknown'
    counters?.hit('maxPacketBytes', offender, { cmd: this.packet.cmd, bytes, max: maxBytes })
    // As for a malformed packet: Aedes closes the connection on the parser's 'error'.
    this._emitError(new Error(`packet of ${bytes} bytes is larger than the maximum of ${maxBytes}`))
    return false
  }
  shared = { maxBytes, counters, parseLength, patched }
  return patched
}

/**
 * Closes the connection as soon as a packet's fixed header says it is longer
 * than `maxBytes` (the first byte, the Remaining Length's own bytes and the
 * Remaining Length [MQTT-2.2.3]), before its body is read. Aedes 1.2 has no
 * such setting, and mqtt-packet buffers a whole packet, up to 256 MB, before
 * handing it over: one client could hold that much memory per connection.
 * The hit is counted under `maxPacketBytes`, by client id once CONNECT was
 * read, else by remote address. Applied right after Aedes creates the client,
 * before the first byte is read.
 */
export function limitPacketSize (client: Client, maxBytes: number, counters: LimitCounters | undefined): void {
  const parser = (client as unknown as { _parser?: ParserInternals })._parser
  if (parser === undefined || typeof parser._parseLength !== 'function' || typeof parser._emitError !== 'function' || parser.client !== client) {
    throw new Error('Aedes internals moved: client._parser._parseLength and _parser.client are needed (broker/mqtt/internals/max-packet-size.ts)')
  }
  parser._parseLength = patchedParseLength(parser._parseLength, maxBytes, counters)
}
