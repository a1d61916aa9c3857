import { Socket } from 'node:net'
import type { Duplex } from 'node:stream'

/*
 * Relies on mqtt-packet 9 (tripwire: test/aedes-tripwires.test.ts,
 * "coalesced writes"): `writeToStream`, which Aedes's lib/write.js and our
 * group deliveries (packet-ids.ts) both write with, corks the stream for each
 * packet and uncorks it on the next tick.
 */

/**
 * Holds a connection's socket corked from its first packet in a turn of the
 * event loop until the check phase (a `setImmediate`), so every packet
 * written to it in between (the PUBACKs of one group commit, the deliveries
 * Aedes schedules one `setImmediate` each) leaves in one `writev` instead of
 * one system call and one TCP segment per packet. On loopback the sender's
 * system call also pays for the receiver's TCP processing: that was the
 * largest single cost in the broker's profile (docs/benchmarks.md).
 *
 * A packet waits at most until the check phase of the turn it was written
 * in, or of the next one when written from the check phase itself (Aedes's
 * deliveries): one non-blocking poll, not a timer. Back-pressure is unchanged:
 * `write` still answers false past the high-water mark and 'drain' follows
 * the flush. `end()` and `destroy()` flush or drop what is corked as usual.
 *
 * TCP and TLS sockets only: they write all that is corked in one `_writev`.
 * A WebSocket's byte stream (ws's `createWebSocketStream`) writes one chunk
 * per frame and waits for each, so a CONNACK refusal held back would still
 * be half queued when Aedes destroys the stream (test/certificate-identity.test.ts).
 */
export function coalesceWrites (conn: Duplex): void {
  if (!(conn instanceof Socket)) return
  // One shared function, no closure per connection (docs/benchmarks.md "Idle connections").
  (conn as Corkable).cork = corkUntilCheckPhase
}

const HELD = Symbol('fleetq.corkHeld')
type Corkable = Socket & { [HELD]?: boolean }

function corkUntilCheckPhase (this: Corkable): void {
  holdUntilCheckPhase(this)
  Socket.prototype.cork.call(this)
}

/** Whether `stream` is a socket {@link coalesceWrites} applies to. */
export function isCoalesced (stream: unknown): boolean {
  return (stream as Partial<Corkable> | null)?.cork === corkUntilCheckPhase
}

/**
 * The hold of a coalesced socket: corked once, uncorked in the check phase.
 * {@link corkUntilCheckPhase} adds mqtt-packet's per-packet cork on top
 * (undone on the next tick); a writer that sends each packet in one
 * `write()` (packet-writer.ts) needs only this. `stream` must be coalesced.
 */
export function holdUntilCheckPhase (stream: NodeJS.WritableStream): void {
  const socket = stream as Corkable
  if (socket[HELD] !== true) {
    socket[HELD] = true
    Socket.prototype.cork.call(socket)
    setImmediate(release, socket)
  }
}

function release (socket: Corkable): void {
  socket[HELD] = false
  socket.uncork()
}
