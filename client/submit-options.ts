import { checkBackoff, type BackoffOptions } from '../protocol/backoff.js'
import { ErrorCodes, FleetqClientError } from '../protocol/errors.js'

/** Options of {@link Client.submit}; defaults are the protocol's `envelopeDefaults`. */
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

/** Options of {@link Client.submitMany}: those of submit() for every task, and a key per task. */
export interface SubmitManyOptions extends Omit<SubmitOptions, 'idempotencyKey'> {
  /** One idempotency key per payload, in order: a resubmitted batch then runs each task once. */
  idempotencyKeys?: string[]
}

/** Throws FLEETQ_SUBMIT_OPTIONS_INVALID (or FLEETQ_DELAY_INVALID, FLEETQ_BACKOFF_INVALID) naming the option at fault, before anything is sent. */
export function checkSubmitOptions (options: SubmitOptions): void {
  const fail = (message: string): never => { throw new FleetqClientError(ErrorCodes.SUBMIT_OPTIONS_INVALID, `submit: ${message}`) }
  if (options.delay !== undefined) {
    if (typeof options.delay !== 'number' || !Number.isFinite(options.delay) || options.delay < 0) {
      throw new FleetqClientError(ErrorCodes.DELAY_INVALID, `submit: delay must be a number of milliseconds >= 0, got ${String(options.delay)}`)
    }
  }
  if (options.maxAttempts !== undefined && (!Number.isInteger(options.maxAttempts) || options.maxAttempts < 1)) fail(`maxAttempts must be an integer >= 1, got ${options.maxAttempts}`)
  if (options.timeout !== undefined && (!Number.isFinite(options.timeout) || options.timeout <= 0)) fail(`timeout must be a number of milliseconds > 0, got ${options.timeout}`)
  if (options.backoff !== undefined) checkBackoff(options.backoff, 'submit: ')
}
