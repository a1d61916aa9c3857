import { randomBytes } from 'node:crypto'
import { open, readFile, rename, rm, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { parseHash, type ParsedHash } from './password-hash.js'

/**
 * The users file, in mosquitto_passwd's spirit (docs/security.md): one
 * `user:hash` line per user, the hash a `$scrypt$…` string
 * (./password-hash.ts). Blank lines and lines starting with `#` are ignored.
 * `fleetq passwd` writes it; the broker reads it at start and on SIGHUP.
 */
export interface UsersFileEntry {
  user: string
  /** The hash as written, kept so a rewrite leaves other lines as they were. */
  encoded: string
}

/** A users file that cannot be used; `line` is 1-based when one line is to blame. */
export class UsersFileError extends Error {
  readonly path: string
  readonly line: number | undefined

  constructor (path: string, message: string, options?: { cause?: unknown, line?: number }) {
    super(`${path}${options?.line === undefined ? '' : ` line ${options.line}`}: ${message}`, options)
    this.name = 'UsersFileError'
    this.path = path
    this.line = options?.line
  }
}

/**
 * Why `user` cannot be a user name, or undefined if it can. `:` ends the
 * name on a line; a leading `#` would make the line a comment; control
 * characters and edge spaces are typing mistakes more often than names.
 */
export function userNameProblem (user: string): string | undefined {
  if (user === '') return 'the user name is empty'
  if (user.includes(':')) return 'a user name cannot contain ":"'
  if (user.startsWith('#')) return 'a user name cannot start with "#"'
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(user)) return 'a user name cannot contain control characters'
  if (user.trim() !== user) return 'a user name cannot start or end with spaces'
  // The MQTT user name field is a UTF-8 string of at most 65535 bytes (MQTT 3.1.1 §1.5.3).
  if (Buffer.byteLength(user) > 65535) return 'a user name is at most 65535 bytes'
  return undefined
}

/** The entries of a users file's text, in order; the first bad line throws. */
export function parseUsersFile (text: string, path: string): UsersFileEntry[] {
  const entries: UsersFileEntry[] = []
  const seen = new Set<string>()
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ''
    if (line.trim() === '' || line.startsWith('#')) continue
    const colon = line.indexOf(':')
    if (colon < 0) throw new UsersFileError(path, 'expected user:hash', { line: i + 1 })
    const user = line.slice(0, colon)
    const encoded = line.slice(colon + 1).trim()
    const problem = userNameProblem(user)
    if (problem !== undefined) throw new UsersFileError(path, problem, { line: i + 1 })
    if (seen.has(user)) throw new UsersFileError(path, `user "${user}" appears twice`, { line: i + 1 })
    try {
      parseHash(encoded)
    } catch (cause) {
      throw new UsersFileError(path, `the hash of "${user}" is ${(cause as Error).message}`, { line: i + 1, cause })
    }
    seen.add(user)
    entries.push({ user, encoded })
  }
  return entries
}

/** What the broker checks a CONNECT against: user name → parsed hash. */
export interface Users {
  readonly path: string
  readonly hashes: ReadonlyMap<string, ParsedHash>
  /** Set when group or others may read the file (mosquitto warns about this too). */
  readonly readableByOthers: boolean
}

/** Reads and checks the users file; any problem is a UsersFileError. */
export async function loadUsers (path: string): Promise<Users> {
  let text: string
  let mode: number
  try {
    text = await readFile(path, 'utf8')
    mode = (await stat(path)).mode
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (cause as Error).message
    throw new UsersFileError(path, `cannot read it: ${reason}`, { cause })
  }
  const hashes = new Map<string, ParsedHash>()
  for (const entry of parseUsersFile(text, path)) hashes.set(entry.user, parseHash(entry.encoded))
  return { path, hashes, readableByOthers: (mode & 0o077) !== 0 }
}

/** The entries of an existing file, for `fleetq passwd` to change. */
export async function readUsersFile (path: string): Promise<UsersFileEntry[]> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (-c creates it)' : (cause as Error).message
    throw new UsersFileError(path, `cannot read it: ${reason}`, { cause })
  }
  return parseUsersFile(text, path)
}

/**
 * Replaces the file with `entries`, atomically: a temporary file next to it,
 * mode 0600 (only the owner reads the hashes), flushed, then renamed over it.
 * A crash leaves the old file or the new one, never half of one, and a broker
 * reloading on SIGHUP never reads a partial file.
 */
export async function writeUsersFile (path: string, entries: readonly UsersFileEntry[]): Promise<void> {
  const text = entries.map((e) => `${e.user}:${e.encoded}\n`).join('')
  const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(temp, 'wx', 0o600)
  try {
    try {
      // The umask cannot widen 0600, but an explicit chmod states the intent.
      await handle.chmod(0o600)
      await handle.writeFile(text)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await rename(temp, path)
  } catch (err) {
    await rm(temp, { force: true })
    throw err
  }
  await syncDirectory(dirname(path))
}

/** The rename itself is durable once the directory is flushed; not every platform allows that, so a failure is ignored. */
async function syncDirectory (dir: string): Promise<void> {
  try {
    const handle = await open(dir, 'r')
    try { await handle.sync() } finally { await handle.close() }
  } catch {
    // Windows cannot open a directory; the rename is still atomic there.
  }
}
