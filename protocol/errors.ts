/**
 * Every error fleetq raises on purpose, broker and client alike, with a
 * stable `code` users can switch on. Codes are documented in docs/errors.md;
 * test/errors.test.ts keeps the two in step. Both entry points (`fleetq` and
 * `fleetq/client`) export this catalogue.
 */
export const ErrorCodes = {
  // broker start-up and configuration
  CONFIG_INVALID: 'FLEETQ_CONFIG_INVALID',
  PORT_IN_USE: 'FLEETQ_PORT_IN_USE',
  LISTEN_FAILED: 'FLEETQ_LISTEN_FAILED',
  DATA_DIR_NOT_WRITABLE: 'FLEETQ_DATA_DIR_NOT_WRITABLE',
  DATA_DIR_LOCKED: 'FLEETQ_DATA_DIR_LOCKED',
  PERSISTENCE_FAILED: 'FLEETQ_PERSISTENCE_FAILED',
  // shared subscriptions
  SHARE_TOPIC_INVALID: 'FLEETQ_SHARE_TOPIC_INVALID',
  GROUP_NOT_FOUND: 'FLEETQ_GROUP_NOT_FOUND',
  GROUP_HAS_MEMBERS: 'FLEETQ_GROUP_HAS_MEMBERS',
  // schedules
  CRON_INVALID: 'FLEETQ_CRON_INVALID',
  TIMEZONE_INVALID: 'FLEETQ_TIMEZONE_INVALID',
  SCHEDULE_INVALID: 'FLEETQ_SCHEDULE_INVALID',
  SCHEDULE_NOT_FOUND: 'FLEETQ_SCHEDULE_NOT_FOUND',
  // admin API (HTTP, docs/operations.md)
  REQUEST_INVALID: 'FLEETQ_REQUEST_INVALID',
  UNAUTHENTICATED: 'FLEETQ_UNAUTHENTICATED',
  FORBIDDEN: 'FLEETQ_FORBIDDEN',
  NOT_FOUND: 'FLEETQ_NOT_FOUND',
  METHOD_NOT_ALLOWED: 'FLEETQ_METHOD_NOT_ALLOWED',
  CLIENT_NOT_FOUND: 'FLEETQ_CLIENT_NOT_FOUND',
  DEAD_LETTER_NOT_FOUND: 'FLEETQ_DEAD_LETTER_NOT_FOUND',
  RETAINED_NOT_FOUND: 'FLEETQ_RETAINED_NOT_FOUND',
  // tasks and schemas
  PAYLOAD_INVALID: 'FLEETQ_PAYLOAD_INVALID',
  UNKNOWN_TASK_TYPE: 'FLEETQ_UNKNOWN_TASK_TYPE',
  SCHEMA_INVALID: 'FLEETQ_SCHEMA_INVALID',
  SCHEMA_OPTIONS_INVALID: 'FLEETQ_SCHEMA_OPTIONS_INVALID',
  SUBMIT_OPTIONS_INVALID: 'FLEETQ_SUBMIT_OPTIONS_INVALID',
  BACKOFF_INVALID: 'FLEETQ_BACKOFF_INVALID',
  DELAY_INVALID: 'FLEETQ_DELAY_INVALID',
  TASK_FAILED: 'FLEETQ_TASK_FAILED',
  TASK_TIMEOUT: 'FLEETQ_TASK_TIMEOUT',
  // the client connection
  CONNECT_FAILED: 'FLEETQ_CONNECT_FAILED',
  CLIENT_CLOSED: 'FLEETQ_CLIENT_CLOSED',
  PUBLISH_FAILED: 'FLEETQ_PUBLISH_FAILED',
  SUBSCRIBE_FAILED: 'FLEETQ_SUBSCRIBE_FAILED',
  SUBSCRIBE_REFUSED: 'FLEETQ_SUBSCRIBE_REFUSED',
  REQUEST_TIMEOUT: 'FLEETQ_REQUEST_TIMEOUT',
  // workers
  WORKER_OPTIONS_INVALID: 'FLEETQ_WORKER_OPTIONS_INVALID'
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/** Base of every fleetq error. `code` is stable; the original error, if any, is on `cause`. */
export class FleetqError<Code extends ErrorCode = ErrorCode> extends Error {
  readonly code: Code

  constructor (code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/**
 * One failing place of a payload, a schedule or a config value: the one issue
 * type of every validation error (and of dead letters on the wire).
 */
export interface ValidationIssue {
  /** JSON Pointer into the value, '' for the value itself (ajv's instancePath). */
  path: string
  message: string
  /** The JSON Schema keyword that failed (required, type, format, maxBytes...). */
  keyword: string
}

// ---------------------------------------------------------------- broker side

/** A configuration value is missing, of the wrong type or out of range. `key` names it. */
export class ConfigError extends FleetqError<typeof ErrorCodes.CONFIG_INVALID> {
  readonly key: string

  constructor (key: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.CONFIG_INVALID, `invalid config "${key}": ${message}`, options)
    this.key = key
  }
}

/** A listener could not bind its port. */
export class ListenError extends FleetqError<typeof ErrorCodes.PORT_IN_USE | typeof ErrorCodes.LISTEN_FAILED> {}

/** The data directory cannot be created, written or locked. */
export class DataDirError extends FleetqError<typeof ErrorCodes.DATA_DIR_NOT_WRITABLE | typeof ErrorCodes.DATA_DIR_LOCKED> {
  readonly dataDir: string

  constructor (
    code: typeof ErrorCodes.DATA_DIR_NOT_WRITABLE | typeof ErrorCodes.DATA_DIR_LOCKED,
    dataDir: string,
    message: string,
    options?: { cause?: unknown }
  ) {
    super(code, message, options)
    this.dataDir = dataDir
  }
}

/** The store failed under the broker: the broker stops rather than acknowledge what it cannot keep. */
export class PersistenceError extends FleetqError<typeof ErrorCodes.PERSISTENCE_FAILED> {
  constructor (message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.PERSISTENCE_FAILED, message, options)
  }
}

export type ScheduleErrorCode =
  | typeof ErrorCodes.CRON_INVALID
  | typeof ErrorCodes.TIMEZONE_INVALID
  | typeof ErrorCodes.SCHEDULE_INVALID
  | typeof ErrorCodes.SCHEDULE_NOT_FOUND

/**
 * A schedule was refused (bad cron expression, unknown time zone, bad topic
 * or task payload) or does not exist. `schedule` names it when known; a
 * payload refused by its task schema lists every failing path in `issues`.
 */
export class ScheduleError extends FleetqError<ScheduleErrorCode> {
  readonly schedule: string | undefined
  readonly issues: ValidationIssue[]

  constructor (code: ScheduleErrorCode, message: string, options?: { cause?: unknown, schedule?: string, issues?: ValidationIssue[] }) {
    super(code, message, options)
    this.schedule = options?.schedule
    this.issues = options?.issues ?? []
  }
}

export type AdminErrorCode =
  | typeof ErrorCodes.REQUEST_INVALID
  | typeof ErrorCodes.UNAUTHENTICATED
  | typeof ErrorCodes.FORBIDDEN
  | typeof ErrorCodes.NOT_FOUND
  | typeof ErrorCodes.METHOD_NOT_ALLOWED
  | typeof ErrorCodes.CLIENT_NOT_FOUND
  | typeof ErrorCodes.DEAD_LETTER_NOT_FOUND
  | typeof ErrorCodes.RETAINED_NOT_FOUND
  | typeof ErrorCodes.GROUP_NOT_FOUND

/**
 * An admin operation was refused: bad input (`issues` lists each failing
 * path), no or wrong credentials, a role that may not do it, or a client,
 * group, dead letter or retained message that does not exist. The HTTP admin
 * API answers it as problem+json (RFC 9457) with this `code`
 * (docs/operations.md).
 */
export class AdminError extends FleetqError<AdminErrorCode> {
  readonly issues: ValidationIssue[]

  constructor (code: AdminErrorCode, message: string, options?: { cause?: unknown, issues?: ValidationIssue[] }) {
    super(code, message, options)
    this.issues = options?.issues ?? []
  }
}

// ---------------------------------------------------------------- client side

/** An error raised by the client layer; `instanceof FleetqError` holds for it too. */
export class FleetqClientError extends FleetqError {}

/** A task payload does not match its type's schema; nothing was sent. */
export class TaskValidationError extends FleetqClientError {
  readonly taskType: string
  readonly issues: ValidationIssue[]
  /** In a bulk submission (`submitMany`), the position of the invalid payload. */
  readonly index?: number

  constructor (taskType: string, issues: ValidationIssue[], options?: { cause?: unknown, index?: number }) {
    const at = options?.index === undefined ? '' : ` at index ${options.index}`
    super(ErrorCodes.PAYLOAD_INVALID,
      `invalid ${taskType} payload${at}: ${issues.map((i) => `${i.path === '' ? '(root)' : i.path} ${i.message}`).join('; ')}`,
      options?.cause === undefined ? undefined : { cause: options.cause })
    this.taskType = taskType
    this.issues = issues
    if (options?.index !== undefined) this.index = options.index
  }
}

/** No schema is registered for this task type (and unknown types are not allowed). */
export class UnknownTaskTypeError extends FleetqClientError {
  readonly taskType: string

  constructor (taskType: string) {
    super(ErrorCodes.UNKNOWN_TASK_TYPE, `unknown task type "${taskType}": register its schema or allow unknown types`)
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
    super(ErrorCodes.TASK_FAILED, message, options)
    this.taskId = taskId
    this.attempts = attempts
  }
}

/**
 * Thrown by a handler to fail the task at once, without retries
 * (BullMQ's UnrecoverableError). Not a FleetqError: users raise it.
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
    super(ErrorCodes.TASK_TIMEOUT, `task ${taskId} timed out after ${timeoutMs} ms`)
    this.taskId = taskId
    this.timeoutMs = timeoutMs
  }
}
