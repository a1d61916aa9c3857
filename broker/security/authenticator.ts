import { randomBytes } from 'node:crypto'
import { isIP } from 'node:net'
import type { Logger } from 'pino'
import { ConfigError } from '../../protocol/errors.js'
import {
  allowAll, BAD_USERNAME_OR_PASSWORD, NOT_AUTHORIZED,
  type AccessPolicy, type Authentication
} from '../mqtt/access.js'
import type { ClientInfo } from '../types/mqtt.js'
import { hashPassword, parseHash, verifyPassword, type ParsedHash } from './password-hash.js'
import { loadUsers, UsersFileError, type Users } from './users-file.js'

/** The `auth` settings (schemas/broker-config.schema.json, docs/security.md). */
export interface AuthSettings {
  /** The users file; unset, no client is checked. */
  usersFile?: string
  /**
   * Whether clients without a user name get in. Unset: yes without a users
   * file (loopback only), no with one.
   */
  allowAnonymous?: boolean
  /**
   * A verified TLS client certificate's subject CN is the user name, with no
   * password check (`tls.certificateIdentity`, Mosquitto's
   * `use_identity_as_username`).
   */
  certificateIdentity?: boolean
}

/** `stats().auth`: CONNECTs accepted and refused since start. */
export interface AuthStats {
  accepted: number
  refused: number
}

export interface AuthenticatorOptions {
  logger: Logger
  /** Every address a listener binds: beyond loopback, an open broker must be asked for. */
  hosts: readonly string[]
}

/**
 * scrypt runs on libuv's thread pool (4 threads by default), which LevelDB
 * uses too: a burst of CONNECTs must not take every thread, so at most this
 * many run at once and the rest wait their turn.
 */
const MAX_CONCURRENT_CHECKS = 2

type Reason = 'unknown user' | 'wrong password' | 'no password' | 'anonymous clients are not allowed'

/**
 * Checks each CONNECT against the users file (docs/security.md). Every user
 * name costs one scrypt, known or not (an unknown one is checked against a
 * dummy hash), so the time a refusal takes does not tell which users exist.
 */
export class Authenticator {
  readonly #settings: AuthSettings
  readonly #logger: Logger
  readonly #hosts: readonly string[]
  readonly #anonymous: boolean
  /** null: no users file, every client gets in (today's open broker). */
  #users: Users | null
  /** What an unknown user name is checked against. */
  readonly #dummy: ParsedHash | null
  #accepted = 0
  #refused = 0
  #running = 0
  #usersVersion = 0
  readonly #waiting: Array<() => void> = []

  private constructor (settings: AuthSettings, logger: Logger, users: Users | null, dummy: ParsedHash | null, hosts: readonly string[]) {
    this.#settings = settings
    this.#logger = logger
    this.#hosts = hosts
    this.#users = users
    this.#dummy = dummy
    // Once anything checks who connects (a users file, client certificates), anonymous is off unless asked for.
    this.#anonymous = settings.allowAnonymous ?? (settings.usersFile === undefined && settings.certificateIdentity !== true)
  }

  /**
   * Reads the users file. A ConfigError (exit 2 from the CLI) for an
   * unreadable or malformed users file, and for a broker that would listen
   * beyond loopback with no users file unless `allowAnonymous` is explicitly
   * true. Logs nothing: a start that fails later should print only its
   * error, so {@link announce} says how the broker is open once it listens.
   */
  static async create (settings: AuthSettings, { logger, hosts }: AuthenticatorOptions): Promise<Authenticator> {
    const { usersFile, allowAnonymous, certificateIdentity } = settings
    const exposed = hosts.filter((host) => !isLoopback(host))
    if (usersFile === undefined && certificateIdentity !== true && allowAnonymous !== true && exposed.length > 0) {
      throw new ConfigError('auth.usersFile', `is required to listen on ${exposed.join(', ')} (beyond loopback); ` +
        'set it, or set auth.allowAnonymous (--allow-anonymous) to let anyone connect')
    }
    if (usersFile === undefined) return new Authenticator(settings, logger, null, null, hosts)
    const users = await readUsers(usersFile)
    // Any password will do: only its cost matters.
    const dummy = parseHash(await hashPassword(randomBytes(16)))
    return new Authenticator(settings, logger, users, dummy, hosts)
  }

  /** Logs, once the broker listens, who may connect: one loud warning when anyone may. */
  announce (): void {
    const users = this.#users
    if (users === null) {
      const certificates = this.#settings.certificateIdentity === true
      if (this.#anonymous) this.#logger.warn({ hosts: this.#hosts }, certificates ? 'anonymous clients are allowed besides those with a client certificate' : 'authentication is off: anyone can connect (set auth.usersFile, docs/security.md)')
      else if (certificates) this.#logger.info('only clients with a verified certificate get in (tls.certificateIdentity, no users file)')
      else this.#logger.warn('auth.allowAnonymous is false and there is no users file: every CONNECT is refused')
      return
    }
    this.#loaded(users)
    if (this.#anonymous) this.#logger.warn({ usersFile: users.path }, 'anonymous clients are allowed besides the users of the users file')
  }

  /** Whether a users file is loaded: without one nothing is checked, over MQTT or HTTP. */
  get hasUsers (): boolean {
    return this.#users !== null
  }

  /**
   * Counts the users file reloads: whoever keeps the outcome of a
   * {@link verify} (the HTTP listener's short cache) drops it when this moves.
   */
  get usersVersion (): number {
    return this.#usersVersion
  }

  /**
   * Whether `password` is `username`'s in the users file (false without one):
   * the CONNECT check's scrypt and time, an unknown user costing as much as a
   * known one, under the same concurrency limit. For HTTP Basic
   * authentication (docs/operations.md); counted in no CONNECT statistic.
   */
  async verify (username: string, password: string): Promise<boolean> {
    const users = this.#users
    if (users === null) return false
    const hash = users.hashes.get(username)
    const match = await this.#limited(() => verifyPassword(Buffer.from(password, 'utf8'), hash ?? this.#dummy ?? fail()))
    return hash !== undefined && match
  }

  /** CONNECTs accepted and refused since start. */
  stats (): AuthStats {
    return { accepted: this.#accepted, refused: this.#refused }
  }

  /**
   * Reads the users file again; connections already accepted stay. A file
   * that cannot be used is logged, leaves the users as they were, and
   * rejects with a ConfigError.
   */
  async reload (): Promise<void> {
    const usersFile = this.#settings.usersFile
    if (usersFile === undefined) {
      this.#logger.info('no users file to reload')
      return
    }
    try {
      const users = await readUsers(usersFile)
      this.#users = users
      this.#usersVersion++
      this.#loaded(users)
    } catch (err) {
      this.#logger.error({ err, usersFile }, 'users file not reloaded; the previous users stay')
      throw err
    }
  }

  /** The CONNECT check; what {@link withAuthentication} plugs into the access policy. */
  async authenticate (client: ClientInfo, username: string | undefined, password: Buffer | undefined): Promise<Authentication> {
    // The TLS handshake already proved who this is (broker/listeners/peer.ts);
    // the CONNECT's user name, if any, is not what the ACLs will see.
    if (this.#settings.certificateIdentity === true && client.certificateCN !== undefined) return this.#accept(client.certificateCN)
    const users = this.#users
    if (username === undefined) {
      return this.#anonymous ? this.#accept() : this.#refuse(client, undefined, NOT_AUTHORIZED, 'anonymous clients are not allowed')
    }
    if (users === null) {
      // No users file: everyone gets in, as before authentication existed; the
      // user name is not recorded, since nothing vouched for it.
      return this.#anonymous ? this.#accept() : this.#refuse(client, username, BAD_USERNAME_OR_PASSWORD, 'unknown user')
    }
    const hash = users.hashes.get(username)
    const match = await this.#limited(() => verifyPassword(password ?? Buffer.alloc(0), hash ?? this.#dummy ?? fail()))
    if (hash === undefined) return this.#refuse(client, username, BAD_USERNAME_OR_PASSWORD, 'unknown user')
    if (password === undefined) return this.#refuse(client, username, BAD_USERNAME_OR_PASSWORD, 'no password')
    if (!match) return this.#refuse(client, username, BAD_USERNAME_OR_PASSWORD, 'wrong password')
    return this.#accept(username)
  }

  #accept (username?: string): Authentication {
    this.#accepted++
    return username === undefined ? { accepted: true } : { accepted: true, username }
  }

  #refuse (client: ClientInfo, username: string | undefined, returnCode: typeof BAD_USERNAME_OR_PASSWORD | typeof NOT_AUTHORIZED, reason: Reason): Authentication {
    this.#refused++
    // Never the password: the user name and why are enough to act on.
    this.#logger.info({ clientId: client.id, username, reason, returnCode }, 'connection refused')
    return { accepted: false, returnCode }
  }

  #loaded (users: Users): void {
    this.#logger.info({ usersFile: users.path, users: users.hashes.size }, 'users file loaded')
    if (users.readableByOthers) this.#logger.warn({ usersFile: users.path }, 'the users file can be read by other users of this machine; chmod 600 it')
  }

  async #limited<T> (work: () => Promise<T>): Promise<T> {
    if (this.#running >= MAX_CONCURRENT_CHECKS) await new Promise<void>((resolve) => this.#waiting.push(resolve))
    this.#running++
    try {
      return await work()
    } finally {
      this.#running--
      this.#waiting.shift()?.()
    }
  }
}

/** `base` (allow-all by default) with its CONNECT check replaced by `auth`'s. */
export function withAuthentication (auth: Authenticator, base: Omit<AccessPolicy, 'authenticate'> = allowAll): AccessPolicy {
  return {
    authenticate: (client, username, password) => auth.authenticate(client, username, password),
    authorizePublish: (client, topic) => base.authorizePublish(client, topic),
    authorizeSubscribe: (client, filter) => base.authorizeSubscribe(client, filter),
    authorizeReceive: (client, topic) => base.authorizeReceive(client, topic)
  }
}

/**
 * Loopback names and addresses: 127.0.0.0/8, ::1 (also IPv4-mapped) and
 * `localhost`. Anything else, `0.0.0.0` and `::` first, reaches a network.
 */
export function isLoopback (host: string): boolean {
  const name = host.toLowerCase().replace(/^\[(.*)\]$/, '$1')
  if (name === 'localhost' || name === '::1') return true
  const v4 = name.startsWith('::ffff:') ? name.slice('::ffff:'.length) : name
  return isIP(v4) === 4 && v4.startsWith('127.')
}

async function readUsers (usersFile: string): Promise<Users> {
  try {
    return await loadUsers(usersFile)
  } catch (err) {
    if (err instanceof UsersFileError) throw new ConfigError('auth.usersFile', err.message, { cause: err })
    throw err
  }
}

function fail (): never {
  throw new Error('no dummy hash: the authenticator has no users file')
}
