import type { Logger } from 'pino'
import { connIdOf } from './internals/conn-ids.js'

/** Whom a hook runs for: an Aedes client (its id and connection id go in the log line), or null for the broker's own publishes. */
export type GuardedClient = { readonly id: string } | null

/** Every place Aedes calls into fleetq: its hooks, the PUBACK path, its events, the QoS 0 delivery patch. */
export type HookName =
  | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward' | 'published'
  | 'puback' | 'subscribe' | 'unsubscribe' | 'clientReady' | 'clientDisconnect' | 'deliver0'

/**
 * Test seam (test/hostile-input.test.ts): called first inside every guarded
 * hook; a test throws from it to show that a failing hook refuses that one
 * packet or client and the broker goes on. Not set in production.
 */
export type FaultProbe = (hook: HookName, clientId: string | null) => void

/**
 * Keeps exceptions of fleetq's code (and of the Aedes code our callbacks
 * resume) from reaching the event loop: Aedes calls hooks from socket
 * 'readable' handlers and emitter callbacks, where a throw kills the process.
 * Each failure is logged once and counted; what the caller does instead
 * (refuse the packet, SUBACK 0x80, disconnect the client) is the hook's
 * `fail` (docs/mqtt-adapter.md).
 */
export class HookGuard {
  readonly #logger: Logger
  readonly #probe: FaultProbe | undefined
  #errors = 0

  constructor (logger: Logger, probe?: FaultProbe) {
    this.#logger = logger
    this.#probe = probe
  }

  /** Hook failures since start (`stats().hookErrors`). */
  get errors (): number {
    return this.#errors
  }

  /**
   * A callback-style hook whose body answers now or in a promise: `ok` gets
   * the body's result (at once when it is not a promise, so the common
   * publish costs no microtask hops), `fail` runs instead if the body throws
   * or rejects. A throw from `ok` itself (Aedes resuming after our callback)
   * is logged and counted only: the callback has been called, there is
   * nothing left to refuse.
   */
  async<T> (hook: HookName, client: GuardedClient, body: () => T | Promise<T>, ok: (value: T) => void, fail: (err: unknown) => void): void {
    let answered = false
    const failure = (err: unknown): void => {
      this.failed(hook, client, err)
      if (answered) return
      answered = true
      try { fail(err) } catch (again) { this.failed(hook, client, again) }
    }
    let result: T | Promise<T>
    try {
      this.#probe?.(hook, client?.id ?? null)
      result = body()
    } catch (err) {
      failure(err)
      return
    }
    if (!(result instanceof Promise)) {
      answered = true
      try { ok(result) } catch (err) { this.failed(hook, client, err) }
      return
    }
    result.then((value) => {
      answered = true
      ok(value)
    }).catch(failure)
  }

  /**
   * The per-message hooks (authorizePublish, published): Aedes's
   * `(error) => void` callback gets the body's answer, or the body's
   * exception as the error. No closure is made per call on the synchronous
   * path, which is the common one.
   */
  callback<A, B> (hook: HookName, client: GuardedClient, body: (a: A, b: B) => Error | null | Promise<Error | null>, a: A, b: B, callback: (error: Error | null) => void): void {
    let result: Error | null | Promise<Error | null>
    try {
      this.#probe?.(hook, client?.id ?? null)
      result = body(a, b)
    } catch (err) {
      this.failed(hook, client, err)
      this.#answer(hook, client, callback, asError(err))
      return
    }
    if (!(result instanceof Promise)) {
      this.#answer(hook, client, callback, result)
      return
    }
    result.then((value) => { this.#answer(hook, client, callback, value) }, (err: unknown) => {
      this.failed(hook, client, err)
      this.#answer(hook, client, callback, asError(err))
    })
  }

  /** Throws when a test asked this hook to fail (the fault probe); a no-op in production. For hooks guarded inline. */
  probe (hook: HookName, client: GuardedClient): void {
    this.#probe?.(hook, client?.id ?? null)
  }

  /** A throw from the callback itself is Aedes resuming after our answer: counted and logged, nothing left to refuse. */
  #answer (hook: HookName, client: GuardedClient, callback: (error: Error | null) => void, value: Error | null): void {
    try {
      callback(value)
    } catch (err) {
      this.failed(hook, client, err)
    }
  }

  /** A synchronous hook or listener: `fallback` answers for it when `body` throws. */
  sync<T> (hook: HookName, client: GuardedClient, body: () => T, fallback: (err: unknown) => T): T {
    try {
      this.#probe?.(hook, client?.id ?? null)
      return body()
    } catch (err) {
      this.failed(hook, client, err)
      try {
        return fallback(err)
      } catch (again) {
        this.failed(hook, client, again)
        return undefined as T
      }
    }
  }

  /** Counts and logs one failure (also for failures the hooks catch themselves). */
  failed (hook: HookName, client: GuardedClient, err: unknown): void {
    this.#errors++
    this.#logger.error({ hook, clientId: client?.id, conn: connIdOf(client), err }, `${hook} failed; refused that packet or client, the broker goes on`)
  }
}

function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
