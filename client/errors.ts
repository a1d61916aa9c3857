import { FleetqError } from '../broker/errors.js'

/**
 * Errors of the client layer, each with a stable `code` (docs/errors.md) and
 * the original error on `cause`.
 */
export const ClientErrorCodes = {
  PAYLOAD_INVALID: 'FLEETQ_PAYLOAD_INVALID',
  UNKNOWN_TASK_TYPE: 'FLEETQ_UNKNOWN_TASK_TYPE',
  SCHEMA_INVALID: 'FLEETQ_SCHEMA_INVALID',
  CONNECT_FAILED: 'FLEETQ_CONNECT_FAILED',
  CLIENT_CLOSED: 'FLEETQ_CLIENT_CLOSED',
  PUBLISH_FAILED: 'FLEETQ_PUBLISH_FAILED',
  SUBSCRIBE_FAILED: 'FLEETQ_SUBSCRIBE_FAILED',
  TASK_FAILED: 'FLEETQ_TASK_FAILED',
  TASK_TIMEOUT: 'FLEETQ_TASK_TIMEOUT',
  DELAY_INVALID: 'FLEETQ_DELAY_INVALID',
  REQUEST_TIMEOUT: 'FLEETQ_REQUEST_TIMEOUT'
} as const

export type ClientErrorCode = (typeof ClientErrorCodes)[keyof typeof ClientErrorCodes]

/** A client-layer error; `instanceof FleetqError` holds for it too. */
export class FleetqClientError extends FleetqError<ClientErrorCode> {}

/** One failing JSON path of a payload, with ajv's message. */
export interface ValidationIssue {
  /** JSON Pointer into the payload, '' for the payload itself (ajv's instancePath). */
  path: string
  message: string
  /** The JSON Schema keyword that failed (required, type, format, additionalProperties, maxLength...). */
  keyword: string
}

/** A task payload does not match its type's schema; nothing was sent. */
export class TaskValidationError extends FleetqClientError {
  readonly taskType: string
  readonly issues: ValidationIssue[]

  constructor (taskType: string, issues: ValidationIssue[], options?: { cause?: unknown }) {
    super(ClientErrorCodes.PAYLOAD_INVALID,
      `invalid ${taskType} payload: ${issues.map((i) => `${i.path === '' ? '(root)' : i.path} ${i.message}`).join('; ')}`, options)
    this.taskType = taskType
    this.issues = issues
  }
}

/** No schema is registered for this task type (and unknown types are not allowed). */
export class UnknownTaskTypeError extends FleetqClientError {
  readonly taskType: string

  constructor (taskType: string) {
    super(ClientErrorCodes.UNKNOWN_TASK_TYPE, `unknown task type "${taskType}": register its schema or allow unknown types`)
    this.taskType = taskType
  }
}

/**
 * The task failed for good (after its last attempt, or an UnrecoverableError):
 * what `result()` rejects with. `attempts` says how many were made.
 */
export class TaskFailedError extends FleetqClientError {
  readonly taskId: string
  readonly attempts: number

  constructor (taskId: string, message: string, attempts: number, options?: { cause?: unknown }) {
    super(ClientErrorCodes.TASK_FAILED, message, options)
    this.taskId = taskId
    this.attempts = attempts
  }
}

/**
 * Thrown by a handler to fail the task at once, without retries
 * (BullMQ's UnrecoverableError).
 */
export class UnrecoverableError extends Error {
  constructor (message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'UnrecoverableError'
  }
}

/**
 * One attempt of a task ran longer than its `timeoutMs`: the handler's
 * signal is aborted with this error and the attempt counts as failed.
 */
export class TaskTimeoutError extends FleetqClientError {
  readonly taskId: string
  readonly timeoutMs: number

  constructor (taskId: string, timeoutMs: number) {
    super(ClientErrorCodes.TASK_TIMEOUT, `task ${taskId} timed out after ${timeoutMs} ms`)
    this.taskId = taskId
    this.timeoutMs = timeoutMs
  }
}
