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
