// Load and measurements for bench/delayed.ts: delayed-message precision,
// backlog insertion, a burst falling due at once, ordinary round trips, and
// fleetq child processes started on a chosen data directory.
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { MqttClient } from 'mqtt'
import { spawnBrokerChild } from './child.js'
import { closeLoadClient, connectLoadClient, Window } from './load.js'

/** Wall-clock ms with sub-ms resolution; one clock for send and arrival (same process). */
export const wallNow = (): number => performance.timeOrigin + performance.now()

export interface Summary {
  count: number
  min: number | null
  p50: number | null
  p99: number | null
  max: number | null
}

/**
 * Exact nearest-rank percentiles. The samples here are a few thousand at
 * most and lateness may be negative, which the µs histogram of stats.ts
 * (lowest value 1) would clamp.
 */
export function summarize (values: readonly number[]): Summary {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  const at = (p: number): number | null => sorted.length === 0 ? null : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))] ?? null
  return { count: sorted.length, min: at(0), p50: at(50), p99: at(99), max: sorted.length === 0 ? null : sorted[sorted.length - 1] ?? null }
}

/** Resolves when `done()` holds or at `deadline` (wall ms), checking after each `poke`. */
class Waiter {
  #wake: (() => void) | null = null
  poke (): void {
    this.#wake?.()
  }

  async until (done: () => boolean, deadline: number): Promise<boolean> {
    while (!done()) {
      const left = deadline - wallNow()
      if (left <= 0) return false
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250))
        this.#wake = () => { clearTimeout(timer); resolve() }
      })
      this.#wake = null
    }
    return true
  }
}

// payload[0..4) run tag, [4..8) index, [8..16) a time (double, ms), rest zero.
const HEADER = 16
function encode (tag: number, index: number, time: number, size = HEADER): Buffer {
  const b = Buffer.alloc(Math.max(size, HEADER))
  b.writeUInt32LE(tag, 0)
  b.writeUInt32LE(index, 4)
  b.writeDoubleLE(time, 8)
  return b
}
function decode (tag: number, payload: Buffer): { index: number, time: number } | null {
  if (payload.length < HEADER || payload.readUInt32LE(0) !== tag) return null
  return { index: payload.readUInt32LE(4), time: payload.readDoubleLE(8) }
}

/** Topic-safe seconds with exactly 3 decimals, the finest `$delayed/` takes. */
const seconds = (ms: number): string => (Math.max(0, Math.round(ms)) / 1000).toFixed(3)

export interface Ctx {
  url: string
  /** Unique per run: topics, client ids and payload tags of other runs are not counted. */
  runId: string
  /** Below 2^31, so tag + round still fits the payload's uint32. */
  tag: number
  clients: MqttClient[]
}

async function client (ctx: Ctx, role: string): Promise<MqttClient> {
  const c = await connectLoadClient(ctx.url, `${ctx.runId}-${role}`)
  ctx.clients.push(c)
  // Without an 'error' listener an mqtt.js error event would throw.
  c.on('error', () => undefined)
  return c
}

export async function closeClients (ctx: Ctx): Promise<void> {
  const all = ctx.clients.splice(0)
  await Promise.allSettled(all.map((c) => closeLoadClient(c)))
}

async function subscribe (c: MqttClient, filter: string): Promise<void> {
  const granted = await c.subscribeAsync(filter, { qos: 1 })
  if (granted.some((g) => g.qos !== 1)) throw new Error(`subscription to ${filter} refused or downgraded`)
}

export interface PrecisionResult {
  sent: number
  delivered: number
  duplicates: number
  /** Arrival minus (send time + delay), ms. */
  lateness: Summary
}

/** Delayed messages at a gentle rate, delays random in [minMs, maxMs]; how late each one arrives. */
export async function measurePrecision (ctx: Ctx, count: number, minMs: number, maxMs: number, intervalMs: number): Promise<PrecisionResult> {
  const prefix = `fleetq-bench/${ctx.runId}/precision`
  const sub = await client(ctx, 'precision-sub')
  const pub = await client(ctx, 'precision-pub')
  const lateness = new Float64Array(count).fill(NaN)
  let delivered = 0
  let duplicates = 0
  const waiter = new Waiter()
  sub.on('message', (_topic, payload) => {
    const now = wallNow()
    const m = decode(ctx.tag, payload)
    if (m === null || m.index >= count) return
    if (!Number.isNaN(lateness[m.index] ?? 0)) { duplicates++; return }
    lateness[m.index] = now - m.time
    delivered++
    waiter.poke()
  })
  await subscribe(sub, `${prefix}/#`)
  const acks: Array<Promise<unknown>> = []
  const start = wallNow()
  for (let i = 0; i < count; i++) {
    const wait = start + i * intervalMs - wallNow()
    if (wait > 0) await sleep(wait)
    const delay = seconds(minMs + Math.random() * (maxMs - minMs))
    // The due time as the publisher means it, computed at send with the delay as written.
    acks.push(pub.publishAsync(`$delayed/${delay}/${prefix}/${i}`, encode(ctx.tag, i, wallNow() + Number(delay) * 1000), { qos: 1 }))
  }
  await Promise.allSettled(acks)
  await waiter.until(() => delivered === count, wallNow() + maxMs + 10_000)
  return { sent: count, delivered, duplicates, lateness: summarize(Array.from(lateness)) }
}

export interface RoundTrips {
  sent: number
  received: number
  /** Send time (wall ms) and round trip (ms, NaN if lost) of each ping. */
  sentAt: Float64Array
  rtt: Float64Array
}

/**
 * Ordinary QoS 1 publishes to a QoS 1 subscriber at a fixed rate, each timed
 * from publish to arrival. `stop` ends the sending early (the burst is over).
 */
export class Pinger {
  readonly #ctx: Ctx
  readonly #name: string
  readonly #topic: string
  #pub: MqttClient | null = null
  #sub: MqttClient | null = null
  #round = 0
  #current: RoundTrips | null = null
  readonly #waiter = new Waiter()

  constructor (ctx: Ctx, name: string) {
    this.#ctx = ctx
    this.#name = name
    this.#topic = `fleetq-bench/${ctx.runId}/rtt/${name}`
  }

  async open (): Promise<void> {
    this.#sub = await client(this.#ctx, `${this.#name}-sub`)
    this.#pub = await client(this.#ctx, `${this.#name}-pub`)
    this.#sub.on('message', (_topic, payload) => {
      const now = performance.now()
      const m = decode(this.#ctx.tag + this.#round, payload)
      const r = this.#current
      if (m === null || r === null || m.index >= r.sent || !Number.isNaN(r.rtt[m.index] ?? 0)) return
      r.rtt[m.index] = now - m.time
      r.received++
      this.#waiter.poke()
    })
    await subscribe(this.#sub, this.#topic)
  }

  async run (count: number, intervalMs: number, timeoutMs: number, stop: () => boolean = () => false): Promise<RoundTrips> {
    const pub = this.#pub
    if (pub === null) throw new Error('Pinger.open() first')
    // A new tag per round: a straggler of the last round is not counted in this one.
    this.#round++
    const tag = this.#ctx.tag + this.#round
    const r: RoundTrips = { sent: 0, received: 0, sentAt: new Float64Array(count), rtt: new Float64Array(count).fill(NaN) }
    this.#current = r
    const start = performance.now()
    const deadline = wallNow() + timeoutMs
    for (let i = 0; i < count && !stop() && wallNow() < deadline; i++) {
      const wait = start + i * intervalMs - performance.now()
      if (wait > 0) await sleep(wait)
      r.sentAt[i] = wallNow()
      r.sent++
      pub.publishAsync(this.#topic, encode(tag, i, performance.now()), { qos: 1 }).catch(() => undefined)
    }
    await this.#waiter.until(() => r.received === r.sent, Math.min(deadline, wallNow() + 10_000))
    this.#current = null
    return r
  }
}

export interface InsertResult {
  sent: number
  acked: number
  seconds: number
  msgPerSec: number
  /** Publish to PUBACK, ms: how long the broker took to store each one. */
  ack: Summary
}

/**
 * Publishes `count` delayed messages with at most `window` unacknowledged.
 * `delayMsFor(i)` is the delay of message i, computed at its send.
 */
async function insertDelayed (ctx: Ctx, role: string, count: number, window: number, timeoutMs: number, topicOf: (i: number) => string, delayMsFor: (i: number) => number, payloadOf: (i: number) => Buffer): Promise<InsertResult> {
  const pub = await client(ctx, role)
  const slots = new Window(window)
  const stop = AbortSignal.timeout(timeoutMs)
  const ackMs = new Float64Array(count).fill(NaN)
  let sent = 0
  let acked = 0
  const waiter = new Waiter()
  const start = performance.now()
  for (let i = 0; i < count; i++) {
    if (!await slots.acquire(stop)) break
    const t0 = performance.now()
    sent++
    pub.publishAsync(`$delayed/${seconds(delayMsFor(i))}/${topicOf(i)}`, payloadOf(i), { qos: 1 }).then(() => {
      ackMs[i] = performance.now() - t0
      acked++
    }, () => undefined).finally(() => { slots.release(); waiter.poke() })
  }
  await waiter.until(() => acked === sent, wallNow() + Math.max(0, timeoutMs - (performance.now() - start)))
  const elapsed = (performance.now() - start) / 1000
  return { sent, acked, seconds: elapsed, msgPerSec: acked / elapsed, ack: summarize(Array.from(ackMs)) }
}

/** `count` messages due in an hour: a backlog that only waits. */
export function insertBacklog (ctx: Ctx, count: number, window: number, timeoutMs: number): Promise<InsertResult> {
  const prefix = `fleetq-bench/${ctx.runId}/backlog`
  const payload = encode(ctx.tag, 0, 0, 64)
  return insertDelayed(ctx, 'backlog-pub', count, window, timeoutMs, (i) => `${prefix}/${i}`, () => 3_600_000, () => payload)
}

export interface BurstResult {
  messages: number
  insert: InsertResult
  /** Time left before the due time when the last message was acknowledged, ms (negative: inserted too late). */
  marginMs: number
  delivered: number
  duplicates: number
  /** Arrival of the first and last message after the due time, ms. */
  firstMs: number | null
  drainMs: number | null
  drainMsgPerSec: number | null
  /** Ordinary round trips sent between the due time and the last arrival. */
  pingsDuringDrain: Summary
  pingsLost: number
}

/**
 * `count` delayed messages all due at one instant `delayMs` from the start
 * (each delay is computed at its send), a QoS 1 subscriber for them, and
 * ordinary pings while they drain.
 */
export async function measureBurst (ctx: Ctx, pinger: Pinger, count: number, delayMs: number, timeoutMs: number): Promise<BurstResult> {
  const prefix = `fleetq-bench/${ctx.runId}/burst`
  const sub = await client(ctx, 'burst-sub')
  const seen = new Uint8Array(count)
  let delivered = 0
  let duplicates = 0
  let first: number | null = null
  let last: number | null = null
  const waiter = new Waiter()
  sub.on('message', (_topic, payload) => {
    const now = wallNow()
    const m = decode(ctx.tag, payload)
    if (m === null || m.index >= count) return
    if (seen[m.index] === 1) { duplicates++; return }
    seen[m.index] = 1
    delivered++
    first ??= now
    last = now
    waiter.poke()
  })
  await subscribe(sub, `${prefix}/#`)
  const dueAt = wallNow() + delayMs
  // A small window keeps the broker's receive time (from which it counts the
  // delay) within a few ms of the send time the delay was computed at.
  const insert = await insertDelayed(ctx, 'burst-pub', count, 100, delayMs, (i) => `${prefix}/${i}`, () => dueAt - wallNow(), (i) => encode(ctx.tag, i, dueAt))
  const marginMs = dueAt - wallNow()
  const expected = insert.sent
  const pings = pinger.run(Math.ceil(timeoutMs / 2), 2, timeoutMs, () => delivered === expected && wallNow() > dueAt)
  await waiter.until(() => delivered === expected, dueAt + timeoutMs)
  const r = await pings
  const end = last ?? wallNow()
  const during: number[] = []
  let pingsLost = 0
  for (let i = 0; i < r.sent; i++) {
    const at = r.sentAt[i] ?? 0
    if (at < dueAt || at > end) continue
    const rtt = r.rtt[i] ?? NaN
    if (Number.isNaN(rtt)) pingsLost++
    else during.push(rtt)
  }
  const drainMs = last === null ? null : last - dueAt
  return {
    messages: count,
    insert,
    marginMs,
    delivered,
    duplicates,
    firstMs: first === null ? null : first - dueAt,
    drainMs,
    drainMsgPerSec: drainMs === null || drainMs <= 0 ? null : delivered / (drainMs / 1000),
    pingsDuringDrain: summarize(during),
    pingsLost
  }
}

const serverScript = fileURLToPath(new URL('./fleetq-server.ts', import.meta.url))

export interface FleetqProcess {
  url: string
  pid: number
  /** From spawn to the {"port"} line, ms. */
  startMs: number
  /** SIGTERM, wait for exit; resolves with how long that took, ms. Idempotent. */
  stop (): Promise<number>
}

/** Starts bench/fleetq-server.ts on `dataDir` (kept: the caller removes it). */
export async function spawnFleetq (dataDir: string): Promise<FleetqProcess> {
  const t0 = performance.now()
  const child = spawnBrokerChild(process.execPath, ['--import', 'tsx', serverScript, '--data-dir', dataDir, '--persistence', 'level'])
  let stopped: Promise<number> | null = null
  const stop = (): Promise<number> => {
    stopped ??= (async () => {
      const s = performance.now()
      // A broker closing a large store gets longer than the default 5 s before SIGKILL.
      await child.stop(30_000)
      return performance.now() - s
    })()
    return stopped
  }
  try {
    const ready = await readyLine(child.child.stdout, child.exited)
    return { url: `mqtt://127.0.0.1:${ready.port}`, pid: ready.pid, startMs: performance.now() - t0, stop }
  } catch (err) {
    await stop()
    throw new Error(`fleetq did not start: ${(err as Error).message}\n${child.stderr()}`, { cause: err })
  }
}

async function readyLine (stdout: NodeJS.ReadableStream | null, exited: Promise<string>): Promise<{ port: number, pid: number }> {
  if (stdout === null) throw new Error('no stdout')
  const lines = createInterface({ input: stdout })
  const first = (async () => {
    for await (const line of lines) {
      const parsed = JSON.parse(line) as { port?: unknown, pid?: unknown }
      if (typeof parsed.port === 'number' && typeof parsed.pid === 'number') return { port: parsed.port, pid: parsed.pid }
      throw new Error(`unexpected first line: ${line}`)
    }
    throw new Error('closed stdout before listening')
  })()
  const timeout = sleep(60_000, null, { ref: false }).then((): never => { throw new Error('not listening after 60 s') })
  const died = exited.then((how): never => { throw new Error(`exited (${how}) before listening`) })
  // The losers settle later; they must not surface as unhandled rejections.
  for (const p of [first, timeout, died]) p.catch(() => undefined)
  try {
    return await Promise.race([first, timeout, died])
  } finally {
    lines.close()
  }
}
