import type { ValidationIssue } from './errors.js'

/** What a worker publishes to the producer's result topic (QoS 1). */
export interface TaskResultMessage {
  id: string
  status: 'completed' | 'failed' | 'progress'
  /** The handler's return value (status `completed`). */
  result?: unknown
  /** The last error message (status `failed`). */
  error?: string
  /** The value given to `progress()` (status `progress`). */
  progress?: number
  /** Attempts made so far, this one included. */
  attempts: number
}

export type DeadLetterReason = 'failed' | 'validation' | 'unrecoverable' | 'timeout'

/** What lands on `$fleetq/dead/{type}` (QoS 1). */
export interface DeadLetter {
  reason: DeadLetterReason
  taskType: string
  error: string
  attempts: number
  /** The task as received (the parsed envelope, or the raw text if it was not JSON). */
  envelope: unknown
  /** ISO 8601 time the task was dead-lettered. */
  at: string
  /** The failing paths, for reason `validation`. */
  issues?: ValidationIssue[]
}

/** Why the broker dead-lettered a submission. */
export type GateDeadLetterReason = 'validation' | 'unknown-type' | 'delay-invalid'

/**
 * What the broker publishes to `$fleetq/dead/{type}` in place of a refused
 * submission (docs/tasks.md). The original is kept as text when it is UTF-8,
 * else as base64, cut at 64 KiB.
 */
export interface GateDeadLetter {
  reason: GateDeadLetterReason
  taskType: string
  topic: string
  clientId: string | null
  issues: ValidationIssue[]
  payload?: string
  payloadBase64?: string
  /** Set when the original was longer than what is kept. */
  truncated?: true
  /** Original size in bytes. */
  bytes: number
  at: string
  /** For a refused `$delayed/...` publish: why. */
  refusal?: string
}
