import type { Client } from 'aedes'
import { performance } from 'node:perf_hooks'

/*
 * Patch of Aedes 1.2 internals (tripwire: "keep-alive wheel" in
 * test/aedes-tripwires.test.ts). lib/handlers/connect.js `setKeepAlive` arms
 * `client._keepaliveTimer = setTimeout(keepaliveTimeout, _keepaliveInterval)`
 * during CONNECT, `_keepaliveInterval` being keepalive × 1500 + 1 ms
 * [MQTT-3.1.2-24]; lib/handlers/index.js calls `_keepaliveTimer.refresh()`
 * after every packet while `_keepaliveInterval > 0`; `client.close()` hands
 * the timer to `clearTimeout` and sets it to null. On expiry Aedes emits
 * 'keepaliveTimeout' on the broker and an 'error' on the client, which closes
 * the connection.
 *
 * A Timeout per connection costs about 250 bytes with its closure and
 * context (docs/benchmarks.md "Idle connections"). Here, once the CONNACK is
 * out, it is replaced by a small entry whose `refresh()` records the time,
 * and one timer for every connection looks at the entries due, a slot of the
 * wheel at a time, as Mosquitto checks its clients' last activity. A
 * connection is closed within TICK_MS after its 1.5 × keep-alive, never
 * before it.
 */

/** How often the wheel looks at the entries due; also how late past its deadline a connection may be closed. */
export const TICK_MS = 500
/** Slots of the wheel: an entry due further than SLOTS × TICK_MS ahead is looked at once per turn, and put back. */
const SLOTS = 128

interface WheelClient {
  closed: boolean
  _keepaliveInterval: number
  _keepaliveTimer: unknown
  broker: { emit: (event: string, ...args: unknown[]) => boolean }
  emit: (event: string, ...args: unknown[]) => boolean
}

/** What `client._keepaliveTimer` is once on the wheel: what lib/handlers/index.js calls, and the last activity. */
class KeepaliveEntry {
  client: WheelClient | null
  last: number

  constructor (client: WheelClient, now: number) {
    this.client = client
    this.last = now
  }

  /** Called by Aedes after each packet the client sent. */
  refresh (): this {
    this.last = performance.now()
    return this
  }
}

const slots: KeepaliveEntry[][] = Array.from({ length: SLOTS }, () => [])
/** The last tick whose slot was looked at. */
let doneTick = 0
let entries = 0
let timer: NodeJS.Timeout | null = null

const tickOf = (ms: number): number => Math.floor(ms / TICK_MS)

function insert (entry: KeepaliveEntry, deadline: number): void {
  // The first tick at or past the deadline, and never one already looked at.
  const tick = Math.max(Math.ceil(deadline / TICK_MS), doneTick + 1)
  ;(slots[tick % SLOTS] as KeepaliveEntry[]).push(entry)
}

function turn (): void {
  const now = performance.now()
  const upTo = tickOf(now)
  // Ticks the event loop was too busy to see are looked at now, in order.
  for (let tick = Math.max(doneTick + 1, upTo - SLOTS + 1); tick <= upTo; tick++) {
    const index = tick % SLOTS
    const due = slots[index] as KeepaliveEntry[]
    if (due.length === 0) continue
    slots[index] = []
    doneTick = tick
    for (const entry of due) visit(entry, now)
  }
  doneTick = upTo
  if (entries === 0 && timer !== null) {
    clearInterval(timer)
    timer = null
  }
}

function visit (entry: KeepaliveEntry, now: number): void {
  const client = entry.client
  if (client === null || client.closed || client._keepaliveTimer !== entry || !(client._keepaliveInterval > 0)) {
    entry.client = null
    entries--
    return
  }
  const deadline = entry.last + client._keepaliveInterval
  if (now < deadline) {
    insert(entry, deadline)
    return
  }
  entry.client = null
  entries--
  // What lib/handlers/connect.js keepaliveTimeout does [MQTT-3.1.2-24].
  client.broker.emit('keepaliveTimeout', client)
  client.emit('error', new Error('keep alive timeout'))
}

/** Puts `client`'s keep-alive on the wheel, in place of the Timeout Aedes armed for it; false if it has none. */
export function moveToWheel (client: Client): boolean {
  const c = client as unknown as WheelClient
  const armed = c._keepaliveTimer
  if (c.closed || !(c._keepaliveInterval > 0) || armed === null || armed instanceof KeepaliveEntry) return false
  if (typeof (armed as { refresh?: unknown }).refresh !== 'function' || typeof (armed as { hasRef?: unknown }).hasRef !== 'function') {
    throw new Error('Aedes internals moved: client._keepaliveTimer is no longer a Timeout (broker/mqtt/internals/keepalive-wheel.ts)')
  }
  clearTimeout(armed as NodeJS.Timeout)
  const now = performance.now()
  if (timer === null) {
    doneTick = tickOf(now)
    timer = setInterval(turn, TICK_MS)
    timer.unref()
  }
  const entry = new KeepaliveEntry(c, now)
  c._keepaliveTimer = entry
  entries++
  insert(entry, now + c._keepaliveInterval)
  return true
}

/** Lets go of a closing client at once rather than when its slot comes round (called from the patched `close`). */
export function leaveWheel (client: Client): void {
  const entry = (client as unknown as WheelClient)._keepaliveTimer
  if (entry instanceof KeepaliveEntry) entry.client = null
}

/** Connections on the wheel, closed ones not yet swept included (for tests). */
export function wheelSize (): number {
  return entries
}
