import { ErrorCodes, FleetqError } from './errors.js'

/** How long to wait before the next attempt of a failed task. */
export interface BackoffOptions {
  /** `fixed`: always `delayMs`; `exponential`: `delayMs * 2^(attempt - 1)`. */
  type: 'fixed' | 'exponential'
  /** Base delay in milliseconds. */
  delayMs: number
  /** Upper bound of the delay before jitter. @defaultValue no bound */
  maxDelayMs?: number
  /**
   * Fraction (0..1) of the delay taken off at random, so that tasks that
   * failed together do not retry together. The delay never exceeds the
   * capped value. @defaultValue 0
   */
  jitter?: number
}

export const defaultBackoff: BackoffOptions = { type: 'exponential', delayMs: 1000, maxDelayMs: 60_000, jitter: 0.2 }

/**
 * The delay after attempt number `attempt` (1-based) failed. Pure: `random`
 * is injected so tests can pin the jitter.
 */
export function computeBackoff (backoff: BackoffOptions, attempt: number, random: () => number = Math.random): number {
  const base = Math.max(0, backoff.delayMs)
  const raw = backoff.type === 'fixed' ? base : base * 2 ** Math.max(0, attempt - 1)
  const capped = backoff.maxDelayMs === undefined ? raw : Math.min(raw, Math.max(0, backoff.maxDelayMs))
  const jitter = Math.min(1, Math.max(0, backoff.jitter ?? 0))
  return Math.round(capped * (1 - jitter * random()))
}

/** Throws FLEETQ_BACKOFF_INVALID on a backoff that cannot work (fail early, not at the first retry); `context` prefixes the message. */
export function checkBackoff (backoff: BackoffOptions, context = ''): void {
  const fail = (message: string): never => { throw new FleetqError(ErrorCodes.BACKOFF_INVALID, `${context}${message}`) }
  if (backoff === null || typeof backoff !== 'object') fail(`backoff must be an object, got ${JSON.stringify(backoff)}`)
  if (backoff.type !== 'fixed' && backoff.type !== 'exponential') fail(`backoff.type must be "fixed" or "exponential", got ${String(backoff.type)}`)
  if (!Number.isFinite(backoff.delayMs) || backoff.delayMs < 0) fail(`backoff.delayMs must be a number >= 0, got ${backoff.delayMs}`)
  if (backoff.maxDelayMs !== undefined && (!Number.isFinite(backoff.maxDelayMs) || backoff.maxDelayMs < 0)) fail(`backoff.maxDelayMs must be a number >= 0, got ${backoff.maxDelayMs}`)
  if (backoff.jitter !== undefined && !(backoff.jitter >= 0 && backoff.jitter <= 1)) fail(`backoff.jitter must be between 0 and 1, got ${backoff.jitter}`)
}
