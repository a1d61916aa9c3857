import type { Readable, Writable } from 'node:stream'
import { hashPassword } from './password-hash.js'
import { askHidden, readLines, type TerminalInput } from './prompt.js'
import { readUsersFile, userNameProblem, writeUsersFile, type UsersFileEntry } from './users-file.js'

/**
 * `fleetq passwd`, in mosquitto_passwd's manner (docs/security.md): adds a
 * user or changes a password, prompting for it twice; `-b` takes it from the
 * command line, `-D` deletes a user, `-c` starts a new file.
 */
export interface PasswdOptions {
  /** Start a new file, replacing one that exists. */
  create?: boolean
  /** Take the password from the command line. */
  batch?: boolean
  /** Delete the user. */
  delete?: boolean
}

export interface PasswdIo {
  /** Where the password comes from without `-b`: a terminal (asked with echo off) or a pipe (read as lines). */
  stdin: Readable & { isTTY?: boolean }
  /** Where the prompts go (stdout stays free). */
  prompts: Writable
}

/** A command line that cannot work: exit 2, as for the broker's configuration errors. */
export class PasswdUsageError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'PasswdUsageError'
  }
}

/** The most an MQTT password field holds (MQTT 3.1.1 §3.1.3.5). */
const MAX_PASSWORD_BYTES = 65535

/** Changes `file` as asked; resolves once the new file is in place. */
export async function passwd (file: string, user: string, password: string | undefined, options: PasswdOptions, io: PasswdIo): Promise<void> {
  checkUsage(user, password, options)
  if (options.delete === true) {
    const entries = await readUsersFile(file)
    const kept = entries.filter((entry) => entry.user !== user)
    if (kept.length === entries.length) throw new Error(`user "${user}" is not in ${file}`)
    await writeUsersFile(file, kept)
    return
  }
  // Read first: a missing or broken file fails before anyone types a password.
  const entries: UsersFileEntry[] = options.create === true ? [] : await readUsersFile(file)
  const secret = options.batch === true ? password ?? '' : await askPassword(io)
  checkPassword(secret)
  const entry = { user, encoded: await hashPassword(secret) }
  const at = entries.findIndex((e) => e.user === user)
  if (at >= 0) entries[at] = entry
  else entries.push(entry)
  await writeUsersFile(file, entries)
}

function checkUsage (user: string, password: string | undefined, options: PasswdOptions): void {
  if (options.delete === true && (options.create === true || options.batch === true)) {
    throw new PasswdUsageError('-D cannot be combined with -c or -b')
  }
  if (options.batch === true && password === undefined) throw new PasswdUsageError('-b needs the password after the user name')
  if (options.batch !== true && password !== undefined) {
    // On the command line it would be seen in `ps` and kept in shell history.
    throw new PasswdUsageError('the password is not taken as an argument: leave it out to be asked for it, or use -b for batch use')
  }
  const problem = userNameProblem(user)
  if (problem !== undefined) throw new PasswdUsageError(problem)
}

function checkPassword (password: string): void {
  if (password === '') throw new Error('the password is empty')
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) throw new Error(`the password is longer than ${MAX_PASSWORD_BYTES} bytes`)
}

/**
 * Twice on a terminal, with echo off. From a pipe, the first line is the
 * password and a second line, if any, must repeat it (`printf 'pw\npw\n' |
 * fleetq passwd …` answers the two prompts; `echo pw | …` works too).
 */
async function askPassword ({ stdin, prompts }: PasswdIo): Promise<string> {
  if (stdin.isTTY === true) {
    const [first, second] = await askHidden(stdin as TerminalInput, prompts, ['Password: ', 'Reenter password: '])
    if (first !== second) throw new Error('the passwords do not match')
    return first ?? ''
  }
  const lines = await readLines(stdin)
  if (lines.length === 0) throw new Error('no password: stdin is not a terminal and gave no line')
  if (lines.length > 2) throw new Error('stdin gave more than two lines: expected the password, then optionally the same again')
  if (lines.length === 2 && lines[0] !== lines[1]) throw new Error('the passwords do not match')
  return lines[0] ?? ''
}
