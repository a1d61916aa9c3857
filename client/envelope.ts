import { randomUUID } from 'node:crypto'
import type { TaskEnvelope } from './generated/task-types.js'
import { checkBackoff, defaultBackoff, type BackoffOptions } from './backoff.js'
import { ClientErrorCodes, FleetqClientError } from './errors.js'
import { resultTopic } from './topics.js'

/** Options of {@link Client.submit}. */
export interface SubmitOptions {
  /**
   * Run the task no sooner than this many milliseconds from now: the broker
   * keeps it (durably) and hands it to workers then (`$delayed/...`).
   * The payload is validated now, by the client and by the broker.
   * @defaultValue 0
   */
  delay?: number
  /** Attempts in all, the first one included. @defaultValue 3 */
  maxAttempts?: number
  /** Delay between attempts. @defaultValue `{ type: 'exponential', delayMs: 1000, maxDelayMs: 60000, jitter: 0.2 }` */
  backoff?: BackoffOptions
  /** Milliseconds one attempt may run before its signal is aborted and it counts as failed. @defaultValue 60000 */
  timeout?: number
  /** Submissions with the same key within the broker's window run once. */
  idempotencyKey?: string
}

export const submitDefaults = { maxAttempts: 3, timeout: 60_000, backoff: defaultBackoff } as const

/** Throws a FleetqClientError naming the option at fault (STYLE.md 4). */
export function checkSubmitOptions (options: SubmitOptions): void {
  const fail = (message: string): never => { throw new FleetqClientError(ClientErrorCodes.PUBLISH_FAILED, `submit: ${message}`) }
  if (options.delay !== undefined) {
    if (typeof options.delay !== 'number' || !Number.isFinite(options.delay) || options.delay < 0) {
      throw new FleetqClientError(ClientErrorCodes.DELAY_INVALID, `submit: delay must be a number of milliseconds >= 0, got ${String(options.delay)}`)
    }
  }
  if (options.maxAttempts !== undefined && (!Number.isInteger(options.maxAttempts) || options.maxAttempts < 1)) fail(`maxAttempts must be an integer >= 1, got ${options.maxAttempts}`)
  if (options.timeout !== undefined && (!Number.isFinite(options.timeout) || options.timeout <= 0)) fail(`timeout must be a number of milliseconds > 0, got ${options.timeout}`)
  if (options.backoff !== undefined) {
    try {
      checkBackoff(options.backoff)
    } catch (err) {
      fail((err as Error).message)
    }
  }
}

export function buildEnvelope (type: string, payload: unknown, producer: string, options: SubmitOptions): TaskEnvelope {
  const id = randomUUID()
  const envelope: TaskEnvelope = {
    id,
    type,
    payload,
    attempt: 1,
    maxAttempts: options.maxAttempts ?? submitDefaults.maxAttempts,
    createdAt: new Date().toISOString(),
    timeoutMs: options.timeout ?? submitDefaults.timeout,
    replyTo: resultTopic(producer, id),
    producer,
    backoff: { ...(options.backoff ?? submitDefaults.backoff) }
  }
  if (options.idempotencyKey !== undefined) envelope.idempotencyKey = options.idempotencyKey
  return envelope
}

/** Kept in a retried envelope: enough to debug, bounded in size. */
const MAX_PREVIOUS_ERRORS = 10
const MAX_ERROR_LENGTH = 1000

/**
 * The envelope of the next attempt: attempt + 1, the error appended, without
 * the broker-set `deliveryCount` and without `idempotencyKey`: the key guards
 * the submission, and the broker's gate would drop a retry that carried it
 * as a duplicate of the first attempt.
 */
export function nextAttempt (envelope: TaskEnvelope, error: string): TaskEnvelope {
  const { deliveryCount: _deliveryCount, idempotencyKey: _idempotencyKey, ...rest } = envelope
  const previousErrors = [...(envelope.previousErrors ?? []), truncate(error)].slice(-MAX_PREVIOUS_ERRORS)
  return { ...rest, attempt: envelope.attempt + 1, previousErrors }
}

export function truncate (text: string): string {
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text
}

export function errorMessage (err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
