/**
 * Every error fleetq raises on purpose, with a stable `code` users can switch on.
 * Codes are documented in docs/errors.md; test/errors.test.ts keeps the two in step.
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'FLEETQ_CONFIG_INVALID',
  PORT_IN_USE: 'FLEETQ_PORT_IN_USE',
  LISTEN_FAILED: 'FLEETQ_LISTEN_FAILED',
  DATA_DIR_NOT_WRITABLE: 'FLEETQ_DATA_DIR_NOT_WRITABLE',
  DATA_DIR_LOCKED: 'FLEETQ_DATA_DIR_LOCKED',
  PERSISTENCE_FAILED: 'FLEETQ_PERSISTENCE_FAILED',
  SHARE_TOPIC_INVALID: 'FLEETQ_SHARE_TOPIC_INVALID',
  GROUP_NOT_FOUND: 'FLEETQ_GROUP_NOT_FOUND',
  GROUP_HAS_MEMBERS: 'FLEETQ_GROUP_HAS_MEMBERS',
  CRON_INVALID: 'FLEETQ_CRON_INVALID',
  TIMEZONE_INVALID: 'FLEETQ_TIMEZONE_INVALID',
  SCHEDULE_INVALID: 'FLEETQ_SCHEDULE_INVALID',
  SCHEDULE_NOT_FOUND: 'FLEETQ_SCHEDULE_NOT_FOUND'
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/** Base of every fleetq error, broker and client layer alike (client errors use ClientErrorCodes). */
export class FleetqError<Code extends string = ErrorCode> extends Error {
  readonly code: Code

  constructor (code: Code, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** A configuration value is missing, of the wrong type or out of range. `key` names it. */
export class ConfigError extends FleetqError {
  readonly key: string

  constructor (key: string, message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.CONFIG_INVALID, `invalid config "${key}": ${message}`, options)
    this.key = key
  }
}

/** A listener could not bind its port. */
export class ListenError extends FleetqError {
  constructor (code: typeof ErrorCodes.PORT_IN_USE | typeof ErrorCodes.LISTEN_FAILED, message: string, options?: { cause?: unknown }) {
    super(code, message, options)
  }
}

/** The data directory cannot be created, written or locked. */
export class DataDirError extends FleetqError {
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
export class PersistenceError extends FleetqError {
  constructor (message: string, options?: { cause?: unknown }) {
    super(ErrorCodes.PERSISTENCE_FAILED, message, options)
  }
}

/** A task payload or field that failed validation: a JSON Pointer and ajv's message. */
export interface ScheduleIssue {
  path: string
  message: string
}

type ScheduleErrorCode =
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
  readonly issues: ScheduleIssue[]

  constructor (code: ScheduleErrorCode, message: string, options?: { cause?: unknown, schedule?: string, issues?: ScheduleIssue[] }) {
    super(code, message, options)
    this.schedule = options?.schedule
    this.issues = options?.issues ?? []
  }
}
