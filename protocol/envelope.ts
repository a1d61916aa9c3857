import { randomUUID } from 'node:crypto'
import { defaultBackoff, type BackoffOptions } from './backoff.js'
import type { TaskEnvelope } from './generated/task-types.js'
import { isTopicLevel, resultTopic } from './topics.js'

/**
 * The defaults of a new task envelope, wherever it is made: `submit()`, the
 * broker's gate wrapping a bare payload, a schedule's tick
 * (schemas/task-envelope.schema.json describes the fields).
 */
export const envelopeDefaults = Object.freeze({
  maxAttempts: 3,
  timeoutMs: 60_000,
  backoff: defaultBackoff
})

export interface NewEnvelope {
  type: string
  payload: unknown
  /** The submitting client id (or `schedule:{name}`); a client id that is one topic level also gets a `replyTo`. */
  producer?: string | null
  /** Whether results go to `$fleetq/results/{producer}/{id}`. @defaultValue true when `producer` is a topic level */
  replyTo?: boolean
  maxAttempts?: number
  timeoutMs?: number
  /** Carried only when given: a worker uses {@link envelopeDefaults}.backoff for an envelope without one. */
  backoff?: BackoffOptions
  idempotencyKey?: string
  /** When the task was made, ms since the epoch. @defaultValue now */
  createdAt?: number
}

/** The one builder of task envelopes: a new id, attempt 1, the defaults above. */
export function buildEnvelope (input: NewEnvelope): TaskEnvelope {
  const id = randomUUID()
  const envelope: TaskEnvelope = {
    id,
    type: input.type,
    payload: input.payload,
    attempt: 1,
    maxAttempts: input.maxAttempts ?? envelopeDefaults.maxAttempts,
    createdAt: new Date(input.createdAt ?? Date.now()).toISOString(),
    timeoutMs: input.timeoutMs ?? envelopeDefaults.timeoutMs
  }
  const producer = input.producer ?? null
  if (producer !== null && producer !== '') {
    // A client id that is not one topic level cannot have a result topic.
    envelope.producer = producer
    if ((input.replyTo ?? true) && isTopicLevel(producer)) envelope.replyTo = resultTopic(producer, id)
  }
  if (input.backoff !== undefined) envelope.backoff = { ...input.backoff }
  if (input.idempotencyKey !== undefined) envelope.idempotencyKey = input.idempotencyKey
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
  const previousErrors = [...(envelope.previousErrors ?? []), truncateError(error)].slice(-MAX_PREVIOUS_ERRORS)
  return { ...rest, attempt: envelope.attempt + 1, previousErrors }
}

/** An error message cut to what an envelope or dead letter keeps. */
export function truncateError (text: string): string {
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 1)}…` : text
}

export function errorMessage (err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
