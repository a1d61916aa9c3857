import type { ValidationIssue } from './errors.js'

/**
 * Request/reply over MQTT 3.1.1, which has no response topic or correlation
 * data of its own (those came in MQTT 5, §4.10): a request carries an `id`,
 * and the answer comes back on a topic made of the requester's client id and
 * that id (`$fleetq/replies/{clientId}/{id}` for requests,
 * `$fleetq/results/{clientId}/{taskId}` for task results), so an ACL can
 * protect it with `%c`. {@link PendingReplies} is the requester's side.
 */

/** What a request id may be: it becomes one topic level of the reply topic. */
const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/

export function isRequestId (id: unknown): id is string {
  return typeof id === 'string' && REQUEST_ID.test(id)
}

export interface ReplyError {
  code: string
  message: string
  issues?: ValidationIssue[]
}

/** The body of a reply to a request. */
export type Reply<R = unknown> =
  | { id: string, ok: true, result: R }
  | { id: string, ok: false, error: ReplyError }

/** Timing out a wait: after `ms`, the wait rejects with `error()`. */
export interface ReplyTimeout {
  ms: number
  error: () => Error
}

interface Waiter<T> {
  resolve (value: T): void
  reject (err: Error): void
  timer: NodeJS.Timeout | undefined
}

/**
 * Requests waiting for their replies, by id, and the one subscription to the
 * reply filter they share (made on first use; tried again after a failure).
 */
export class PendingReplies<T> {
  readonly #subscribe: () => Promise<void>
  readonly #waiters = new Map<string, Waiter<T>>()
  #subscribed: Promise<void> | null = null

  /** `subscribe` sends the SUBSCRIBE for the reply filter; replies are handed to {@link resolve}/{@link reject}. */
  constructor (subscribe: () => Promise<void>) {
    this.#subscribe = subscribe
  }

  /** Resolves once the reply filter is subscribed. */
  subscribed (): Promise<void> {
    this.#subscribed ??= this.#subscribe().catch((err: unknown) => {
      this.#subscribed = null
      throw err
    })
    return this.#subscribed
  }

  /** Waits for the reply to `id`; without `timeout` it waits until resolved, rejected or {@link rejectAll}. */
  wait (id: string, timeout?: ReplyTimeout): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = timeout === undefined
        ? undefined
        : setTimeout(() => {
          this.#waiters.delete(id)
          reject(timeout.error())
        }, timeout.ms)
      this.#waiters.set(id, { resolve, reject, timer })
    })
  }

  has (id: string): boolean {
    return this.#waiters.has(id)
  }

  /** Settles the wait for `id`; false when nothing waits for it (a reply to an earlier process, say). */
  resolve (id: string, value: T): boolean {
    const waiter = this.#take(id)
    waiter?.resolve(value)
    return waiter !== undefined
  }

  reject (id: string, err: Error): boolean {
    const waiter = this.#take(id)
    waiter?.reject(err)
    return waiter !== undefined
  }

  /** Rejects every wait (the client is closing). */
  rejectAll (err: Error): void {
    for (const id of [...this.#waiters.keys()]) this.reject(id, err)
  }

  #take (id: string): Waiter<T> | undefined {
    const waiter = this.#waiters.get(id)
    if (waiter === undefined) return undefined
    this.#waiters.delete(id)
    clearTimeout(waiter.timer)
    return waiter
  }
}
