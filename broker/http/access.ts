import { createHash, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import type { Logger } from 'pino'
import { ConfigError, ErrorCodes } from '../../protocol/errors.js'
import { isLoopback, type Authenticator } from '../security/authenticator.js'
import { HttpProblem } from './problem.js'

/** What a request may do: `read` may GET, `admin` anything (docs/operations.md). */
export type Role = 'admin' | 'read'

/** Who made a request, once authenticated. `user` is null for the bearer token and on an open broker. */
export interface Caller {
  user: string | null
  role: Role
}

export interface HttpAccessOptions {
  /** The users file (with none, every request is `admin`). */
  auth: Authenticator
  /** `auth.admins`: users of the users file who get `admin`. */
  admins: readonly string[]
  /** `http.token`: `Authorization: Bearer` with it gets `read`. */
  token?: string
  logger: Logger
}

/**
 * How long a successful Basic check is remembered: a dashboard polling every
 * second must not cost a scrypt (tens of ms of the thread pool) per request,
 * and a changed password or a removed user still takes effect soon.
 */
const CACHE_TTL_MS = 30_000
/** Beyond this many remembered credentials the oldest is forgotten: memory stays bounded. */
const CACHE_MAX = 1000

/**
 * Resolves each request's role from its Authorization header
 * (docs/operations.md): Basic against the users file, Bearer against
 * `http.token`. Without a users file the broker is open and everyone is admin.
 */
export class HttpAccess {
  readonly #auth: Authenticator
  readonly #admins: ReadonlySet<string>
  readonly #tokenDigest: Buffer | null
  readonly #logger: Logger
  /** sha256 of the Authorization header → the user it proved, and until when. */
  readonly #verified = new Map<string, { user: string, until: number }>()
  #usersVersion: number

  constructor ({ auth, admins, token, logger }: HttpAccessOptions) {
    this.#auth = auth
    this.#admins = new Set(admins)
    this.#tokenDigest = token === undefined ? null : digest(token)
    this.#logger = logger
    this.#usersVersion = auth.usersVersion
  }

  /**
   * The HTTP listener may not be open to a network with no users file: an
   * open broker's admin API could delete anything (docs/security.md). A
   * ConfigError naming `http.host` otherwise.
   */
  static checkHost (host: string, usersFile: string | undefined): void {
    if (usersFile === undefined && !isLoopback(host)) {
      throw new ConfigError('http.host', `${host} is beyond loopback: the admin API and dashboard need auth.usersFile there ` +
        '(or keep http.host on 127.0.0.1, or set http.enabled false)')
    }
  }

  /** Whether any request is checked at all. */
  get open (): boolean {
    return !this.#auth.hasUsers
  }

  /**
   * The caller, or a 401 HttpProblem when the credentials are missing or
   * wrong. `quiet` (the request sent `X-Requested-With: fleetq`) leaves out
   * `WWW-Authenticate`, so a browser shows no login pop-up of its own.
   */
  async identify (headers: IncomingHttpHeaders): Promise<Caller> {
    if (!this.#auth.hasUsers) return { user: null, role: 'admin' }
    const quiet = headers['x-requested-with'] === 'fleetq'
    const authorization = headers.authorization ?? ''
    const [scheme = '', credentials = ''] = authorization.trim().split(/\s+/, 2)
    if (scheme.toLowerCase() === 'bearer' && this.#tokenMatches(credentials)) return { user: null, role: 'read' }
    if (scheme.toLowerCase() === 'basic') {
      const user = await this.#basic(authorization, credentials)
      if (user !== null) return { user, role: this.#admins.has(user) ? 'admin' : 'read' }
    }
    const message = authorization === '' ? 'credentials are required' : 'the credentials are not valid'
    throw new HttpProblem(401, ErrorCodes.UNAUTHENTICATED, message, quiet ? {} : { headers: { 'www-authenticate': 'Basic realm="fleetq", charset="UTF-8"' } })
  }

  #tokenMatches (presented: string): boolean {
    if (this.#tokenDigest === null || presented === '') return false
    // Equal-length digests: timingSafeEqual tells nothing of how much of the token matched.
    return timingSafeEqual(digest(presented), this.#tokenDigest)
  }

  /** The user these Basic credentials prove, or null. */
  async #basic (header: string, encoded: string): Promise<string | null> {
    if (this.#usersVersion !== this.#auth.usersVersion) {
      // The users file was read again: a removed user or changed password counts at once.
      this.#verified.clear()
      this.#usersVersion = this.#auth.usersVersion
    }
    // Keyed by a hash of the header, so the cache holds no password.
    const key = digest(header).toString('base64')
    const now = Date.now()
    const known = this.#verified.get(key)
    if (known !== undefined && known.until > now) return known.user
    this.#verified.delete(key)
    // RFC 7617 §2: base64 of `user:password`, the user name without a colon.
    const decoded = Buffer.from(encoded, 'base64').toString('utf8')
    const colon = decoded.indexOf(':')
    if (colon <= 0) return null
    const user = decoded.slice(0, colon)
    if (!await this.#auth.verify(user, decoded.slice(colon + 1))) {
      this.#logger.info({ username: user }, 'http request refused: wrong user name or password')
      return null
    }
    if (this.#verified.size >= CACHE_MAX) this.#verified.delete(this.#verified.keys().next().value!)
    this.#verified.set(key, { user, until: now + CACHE_TTL_MS })
    return user
  }
}

function digest (text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}
