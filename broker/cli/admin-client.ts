/**
 * A small client of the broker's HTTP admin API (docs/operations.md), for the
 * `fleetq` admin commands. Refusals come back as problem+json (RFC 9457);
 * they are thrown as AdminRequestError carrying the fleetq `code`.
 */
import type { ValidationIssue } from '../../protocol/errors.js'

export interface AdminClientOptions {
  /** Base URL of the broker's HTTP listener, e.g. `http://127.0.0.1:8080`. */
  url: string
  /** Basic authentication against the broker's users file. */
  user?: string
  password?: string
  /** `Authorization: Bearer` (the broker's `http.token`): reads only. */
  token?: string
  /** @defaultValue 30000 */
  timeoutMs?: number
}

/** One answer of the API: the status, its body as sent, and that body parsed when it is JSON. */
export interface AdminResponse<T = unknown> {
  status: number
  text: string
  body: T
}

/** The API refused a request: the problem+json's `detail`, `code` and `issues`. */
export class AdminRequestError extends Error {
  readonly status: number
  /** `FLEETQ_...` from the problem's `code`; `HTTP_{status}` when the answer was not problem+json. */
  readonly code: string
  readonly issues: ValidationIssue[]

  constructor (status: number, code: string, message: string, issues: ValidationIssue[] = []) {
    super(message)
    this.name = 'AdminRequestError'
    this.status = status
    this.code = code
    this.issues = issues
  }
}

/** No HTTP answer at all: connection refused, unknown host, timeout. */
export class AdminUnreachableError extends Error {
  readonly url: string

  constructor (url: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot reach the admin API at ${url} (${reason}): is the broker running with its HTTP listener on? ` +
      'Name it with --url or FLEETQ_ADMIN_URL', options)
    this.name = 'AdminUnreachableError'
    this.url = url
  }
}

export class AdminClient {
  readonly #base: URL
  readonly #headers: Record<string, string>
  readonly #timeoutMs: number

  constructor (options: AdminClientOptions) {
    this.#base = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`)
    this.#timeoutMs = options.timeoutMs ?? 30_000
    this.#headers = {
      accept: 'application/json, application/problem+json',
      // The broker then answers 401 without `WWW-Authenticate` (docs/operations.md).
      'x-requested-with': 'fleetq'
    }
    if (options.user !== undefined) {
      const credentials = Buffer.from(`${options.user}:${options.password ?? ''}`).toString('base64')
      this.#headers['authorization'] = `Basic ${credentials}`
    } else if (options.token !== undefined) {
      this.#headers['authorization'] = `Bearer ${options.token}`
    }
  }

  /** The base URL as given, for messages. */
  get url (): string {
    return this.#base.href.replace(/\/$/, '')
  }

  get<T> (path: string): Promise<AdminResponse<T>> {
    return this.request<T>('GET', path)
  }

  post<T> (path: string, body: unknown = {}): Promise<AdminResponse<T>> {
    return this.request<T>('POST', path, body)
  }

  put<T> (path: string, body: unknown): Promise<AdminResponse<T>> {
    return this.request<T>('PUT', path, body)
  }

  delete (path: string): Promise<AdminResponse<undefined>> {
    return this.request<undefined>('DELETE', path)
  }

  /** `path` is relative to the base URL (`api/status`); segments taken from users go through {@link segment}. */
  async request<T> (method: string, path: string, body?: unknown): Promise<AdminResponse<T>> {
    const url = new URL(path.replace(/^\//, ''), this.#base)
    const headers = { ...this.#headers }
    // Every non-GET request carries JSON: the broker refuses others (CSRF, docs/operations.md).
    if (method !== 'GET') headers['content-type'] = 'application/json'
    let response: Response
    let text: string
    try {
      response = await fetch(url, {
        method,
        headers,
        body: method === 'GET' ? undefined : JSON.stringify(body ?? {}),
        signal: AbortSignal.timeout(this.#timeoutMs)
      })
      text = await response.text()
    } catch (err) {
      throw new AdminUnreachableError(this.url, reasonOf(err, this.#timeoutMs), { cause: err })
    }
    const parsed = parseJson(text)
    if (!response.ok) throw refusal(response, parsed)
    return { status: response.status, text, body: parsed as T }
  }
}

/** A path segment from user input (a group key holds `/`, a client id anything). */
export function segment (value: string): string {
  return encodeURIComponent(value)
}

function refusal (response: Response, parsed: unknown): AdminRequestError {
  if (isProblem(parsed)) {
    const detail = parsed.detail ?? parsed.title ?? `HTTP ${response.status}`
    return new AdminRequestError(response.status, parsed.code ?? `HTTP_${response.status}`, detail, parsed.issues ?? [])
  }
  // Not our API answering (another server on that port, a proxy, a broker without the admin API).
  return new AdminRequestError(response.status, `HTTP_${response.status}`,
    `${response.url} answered ${response.status} ${response.statusText}, not as the fleetq admin API; is --url the broker's HTTP listener?`)
}

interface Problem { code?: string, detail?: string, title?: string, issues?: ValidationIssue[] }

function isProblem (value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && typeof (value as Problem).code === 'string'
}

function parseJson (text: string): unknown {
  if (text === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** Node's fetch hides the socket error in `cause`: ECONNREFUSED, ENOTFOUND... */
function reasonOf (err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${timeoutMs} ms`
  const cause = err instanceof Error ? err.cause : undefined
  if (typeof cause === 'object' && cause !== null) {
    const { code, message } = cause as { code?: unknown, message?: unknown }
    if (typeof code === 'string') return code
    if (typeof message === 'string') return message
  }
  return err instanceof Error ? err.message : String(err)
}
