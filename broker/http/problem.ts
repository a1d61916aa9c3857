import type { ServerResponse } from 'node:http'
import { AdminError, ErrorCodes, FleetqError, type ErrorCode, type ValidationIssue } from '../../protocol/errors.js'

/**
 * Errors as problem+json (RFC 9457, docs/operations.md): the fleetq `code`
 * picks the HTTP status; anything without a known code is a 500 whose detail
 * says nothing about the server's insides.
 */

/** The status of each code the admin API answers with; any other error is 500. */
const STATUS_BY_CODE: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.REQUEST_INVALID]: 400,
  [ErrorCodes.SCHEDULE_INVALID]: 400,
  [ErrorCodes.CRON_INVALID]: 400,
  [ErrorCodes.TIMEZONE_INVALID]: 400,
  [ErrorCodes.PAYLOAD_INVALID]: 400,
  [ErrorCodes.UNAUTHENTICATED]: 401,
  [ErrorCodes.FORBIDDEN]: 403,
  [ErrorCodes.UNKNOWN_TASK_TYPE]: 404,
  [ErrorCodes.NOT_FOUND]: 404,
  [ErrorCodes.CLIENT_NOT_FOUND]: 404,
  [ErrorCodes.GROUP_NOT_FOUND]: 404,
  [ErrorCodes.DEAD_LETTER_NOT_FOUND]: 404,
  [ErrorCodes.RETAINED_NOT_FOUND]: 404,
  [ErrorCodes.SCHEDULE_NOT_FOUND]: 404,
  [ErrorCodes.METHOD_NOT_ALLOWED]: 405,
  [ErrorCodes.GROUP_HAS_MEMBERS]: 409
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error'
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json'

/** The body of every refusal. */
export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  /** The fleetq code; absent on a 500, which has none (ErrorCodes lists only refusals made on purpose). */
  code?: string
  instance: string
  issues?: ValidationIssue[]
}

/**
 * A refusal the HTTP layer itself decides, with a status a code alone does
 * not give (413 and 415 are FLEETQ_REQUEST_INVALID too) and extra headers
 * (`allow`, `www-authenticate`).
 */
export class HttpProblem extends AdminError {
  readonly status: number
  readonly headers: Record<string, string>

  constructor (status: number, code: ConstructorParameters<typeof AdminError>[0], message: string,
    options: { issues?: ValidationIssue[], headers?: Record<string, string>, cause?: unknown } = {}) {
    super(code, message, options)
    this.status = status
    this.headers = options.headers ?? {}
  }
}

/** Whether `err` is answered with its own message (a known refusal) rather than a 500. */
export function isKnownRefusal (err: unknown): err is FleetqError {
  return err instanceof HttpProblem || (err instanceof FleetqError && STATUS_BY_CODE[(err as FleetqError).code] !== undefined)
}

/** The problem for `err` at `instance` (the request's path). */
export function toProblem (err: unknown, instance: string): { problem: Problem, headers: Record<string, string> } {
  if (!isKnownRefusal(err)) {
    const status = 500
    return { problem: { type: 'about:blank', title: TITLES[status]!, status, detail: 'internal error', instance }, headers: {} }
  }
  const status = err instanceof HttpProblem ? err.status : STATUS_BY_CODE[err.code]!
  const issues = 'issues' in err && Array.isArray(err.issues) ? err.issues as ValidationIssue[] : []
  const problem: Problem = {
    type: `https://fleetq.dev/errors/${err.code}`,
    title: TITLES[status] ?? 'Error',
    status,
    detail: err.message,
    code: err.code,
    instance,
    ...(issues.length > 0 ? { issues } : {})
  }
  return { problem, headers: err instanceof HttpProblem ? err.headers : {} }
}

/** Sends `err` as problem+json, unless the answer has already begun (then the stream is cut). */
export function sendProblem (res: ServerResponse, err: unknown, instance: string): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const { problem, headers } = toProblem(err, instance)
  res.writeHead(problem.status, { ...headers, 'content-type': PROBLEM_CONTENT_TYPE, 'cache-control': 'no-store' })
  res.end(JSON.stringify(problem))
}
