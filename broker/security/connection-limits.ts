import type { Duplex } from 'node:stream'
import type { LimitOptions } from '../generated/config-types.js'
import type { LimitCounters, LimitName } from './limit-counters.js'

/** The connection-level limits of `limits.*` (schemas/broker-config.schema.json); 0 = unbounded for each. */
export type ConnectionLimitSettings = Required<Pick<LimitOptions, 'maxConnections' | 'maxConnectionsPerAddress' | 'connectsPerSecondPerAddress'>>

/** A raw TCP socket as accepted (a `net.Socket`): its remote address, undefined once it is gone. */
export type AcceptedSocket = Duplex & { readonly remoteAddress?: string | undefined }

export interface ConnectionLimitStats {
  /** Connections admitted and not yet closed, on all listeners. */
  open: number
  /** Remote addresses with state kept: open connections, or a rate bucket still refilling. */
  addresses: number
}

/** One remote address: its open connections and its token bucket of new connections. */
interface AddressState {
  open: number
  /** In thousandths of a connection: with whole milliseconds, a refill (ms × per second) stays an exact integer. */
  credit: number
  /** When `credit` was last brought up to date (ms). */
  at: number
}

/** A burst of twice the rate, so the bucket refills from empty in this long whatever the rate. */
const BURST_FACTOR = 2
const REFILL_MS = BURST_FACTOR * 1000
/** What one connection costs, in credit. */
const CONNECTION = 1000

/**
 * Admits a new TCP connection or closes it before a byte of it is read, on
 * every listener as the raw socket is accepted: before a TLS handshake or an
 * HTTP upgrade, which cost the broker more than a refusal. At most
 * `maxConnections` open, `maxConnectionsPerAddress` open per remote address,
 * and `connectsPerSecondPerAddress` new ones per second per address (token
 * bucket, bursts of twice that). MQTT 3.1.1 has no CONNACK code for a refusal
 * before CONNECT is read, so a refused connection is simply closed, as
 * Mosquitto does. Each refusal is counted and logged once per address
 * ({@link LimitCounters}).
 *
 * State per address lives while the address has open connections or a bucket
 * still refilling; the rest is swept, at most once per refill period, when a
 * connection arrives: a flood from many addresses leaves nothing behind.
 */
export class ConnectionLimits {
  readonly #settings: ConnectionLimitSettings
  readonly #counters: LimitCounters
  readonly #now: () => number
  readonly #addresses = new Map<string, AddressState>()
  #open = 0
  #sweptAt: number
  /**
   * The one 'close' listener of every admitted socket: no closure, and no
   * `once` wrapper, per connection (docs/benchmarks.md "Idle connections").
   * It removes itself: a stream may report closing more than once.
   */
  readonly #onClose: (this: AcceptedSocket) => void

  constructor (settings: ConnectionLimitSettings, counters: LimitCounters, now: () => number = Date.now) {
    const { maxConnections, maxConnectionsPerAddress, connectsPerSecondPerAddress } = settings
    this.#settings = { maxConnections, maxConnectionsPerAddress, connectsPerSecondPerAddress }
    for (const [name, value] of Object.entries(this.#settings)) {
      if (!Number.isInteger(value) || value < 0) throw new RangeError(`limits.${name} must be a non-negative integer, got ${String(value)}`)
    }
    this.#counters = counters
    this.#now = now
    this.#sweptAt = now()
    const release = (socket: AcceptedSocket): void => { this.#release(socket) }
    const onClose = function released (this: AcceptedSocket): void {
      this.off('close', onClose)
      release(this)
    }
    this.#onClose = onClose
  }

  /**
   * True if the raw socket just accepted is within every limit: it is then
   * counted open until it closes (whatever runs over it, TLS, WebSocket or
   * MQTT, is not counted again). Otherwise destroys it at once, counts the
   * hit and returns false.
   */
  admitSocket (socket: AcceptedSocket): boolean {
    const now = this.#now()
    if (now - this.#sweptAt >= REFILL_MS) this.#sweep(now)
    // Undefined only for a socket already gone: it is closed anyway, and
    // must not share one "unknown" address's limits with others.
    const address = socket.remoteAddress
    const refusal = this.#refusal(address, now)
    if (refusal !== null) {
      this.#counters.hit(refusal.limit, address ?? 'unknown', refusal.details)
      socket.destroy()
      return false
    }
    this.#open++
    if (address !== undefined) this.#take(address, now).open++
    // A socket that closed before it got here emits no more 'close'.
    if (socket.closed) this.#release(socket)
    else socket.on('close', this.#onClose)
    return true
  }

  stats (): ConnectionLimitStats {
    return { open: this.#open, addresses: this.#addresses.size }
  }

  /** The limit a new connection from `address` breaks, or null. Capacity first: a refusal for capacity does not spend the address's tokens. */
  #refusal (address: string | undefined, now: number): { limit: LimitName, details: Record<string, unknown> } | null {
    const { maxConnections, maxConnectionsPerAddress, connectsPerSecondPerAddress } = this.#settings
    if (maxConnections > 0 && this.#open >= maxConnections) {
      return { limit: 'maxConnections', details: { open: this.#open, max: maxConnections } }
    }
    if (address === undefined) return null
    const state = this.#addresses.get(address)
    if (state === undefined) return null
    if (maxConnectionsPerAddress > 0 && state.open >= maxConnectionsPerAddress) {
      return { limit: 'maxConnectionsPerAddress', details: { open: state.open, max: maxConnectionsPerAddress } }
    }
    if (connectsPerSecondPerAddress > 0 && this.#refill(state, now) < CONNECTION) {
      return { limit: 'connectsPerSecondPerAddress', details: { perSecond: connectsPerSecondPerAddress, burst: connectsPerSecondPerAddress * BURST_FACTOR } }
    }
    return null
  }

  /** The address's state, with one token spent on the connection just admitted. */
  #take (address: string, now: number): AddressState {
    let state = this.#addresses.get(address)
    if (state === undefined) {
      state = { open: 0, credit: this.#capacity(), at: now }
      this.#addresses.set(address, state)
    }
    if (this.#settings.connectsPerSecondPerAddress > 0) state.credit = this.#refill(state, now) - CONNECTION
    return state
  }

  /**
   * An admitted socket closed. Its address is the one it was admitted with:
   * Node keeps a socket's peer address once read, after it closes too.
   */
  #release (socket: AcceptedSocket): void {
    this.#open--
    const address = socket.remoteAddress
    const state = address === undefined ? undefined : this.#addresses.get(address)
    if (address === undefined || state === undefined) return
    state.open--
    if (state.open === 0 && this.#refill(state, this.#now()) >= this.#capacity()) this.#addresses.delete(address)
  }

  /** Drops every address with nothing open and a full bucket: it would start from a fresh state anyway. */
  #sweep (now: number): void {
    this.#sweptAt = now
    const capacity = this.#capacity()
    for (const [address, state] of this.#addresses) {
      if (state.open === 0 && this.#refill(state, now) >= capacity) this.#addresses.delete(address)
    }
  }

  /** Brings the bucket up to `now` and returns its credit. */
  #refill (state: AddressState, now: number): number {
    const rate = this.#settings.connectsPerSecondPerAddress
    if (rate === 0) return state.credit
    // A clock that steps back adds nothing, and takes nothing either.
    const elapsed = Math.max(0, now - state.at)
    state.credit = Math.min(this.#capacity(), state.credit + elapsed * rate)
    state.at = now
    return state.credit
  }

  /** A full bucket, in credit. */
  #capacity (): number {
    return this.#settings.connectsPerSecondPerAddress * BURST_FACTOR * CONNECTION
  }
}
