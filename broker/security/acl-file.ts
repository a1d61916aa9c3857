import { readFile } from 'node:fs/promises'
import { AclRules, type AclAccess, type AclRule } from './acl.js'

/**
 * An ACL file line that cannot be used; `line` is 1-based and the message
 * quotes the line. Internal, as UsersFileError is: the broker reports it as
 * a ConfigError on `auth.aclFile` (broker/security/topic-access.ts).
 */
export class AclFileError extends Error {
  readonly line: number

  constructor (line: number, text: string, reason: string) {
    super(`line ${line} (${JSON.stringify(text)}): ${reason}`)
    this.name = 'AclFileError'
    this.line = line
  }
}

const ACCESS: ReadonlySet<string> = new Set<AclAccess>(['read', 'write', 'readwrite', 'deny'])

/**
 * The rules of an ACL file's text, in Mosquitto's `acl_file` format
 * (`man mosquitto.conf`):
 * - `topic [read|write|readwrite|deny] <filter>`: for the clients of the
 *   current `user` section, or anonymous clients before any `user` line.
 *   The access defaults to `readwrite`; a filter with spaces needs it written.
 * - `user <name>`: starts the section of that user (the rest of the line).
 * - `pattern [access] <filter>`: for every client, `%u` standing for its
 *   user name and `%c` for its client id.
 * - Blank lines and lines starting with `#` are ignored.
 * The first line that is none of these throws an {@link AclFileError}.
 */
export function parseAcl (text: string): AclRules {
  const anonymous: AclRule[] = []
  const users = new Map<string, AclRule[]>()
  const patterns: AclRule[] = []
  let section = anonymous
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).trim()
    if (line === '' || line.startsWith('#')) continue
    const invalid = (reason: string): AclFileError => new AclFileError(i + 1, line, reason)
    const [keyword, rest] = firstWord(line)
    if (keyword === 'user') {
      if (rest === '') throw invalid('"user" needs a user name')
      // Mosquitto merges the sections of a user named twice.
      section = users.get(rest) ?? []
      users.set(rest, section)
    } else if (keyword === 'topic' || keyword === 'pattern') {
      const rule = parseRule(keyword, rest, invalid)
      if (keyword === 'topic') section.push(rule)
      else patterns.push(rule)
    } else {
      throw invalid(`unknown keyword "${keyword}": expected topic, pattern or user`)
    }
  }
  return new AclRules({ anonymous, users, patterns })
}

/** Reads the ACL file at `path` (UTF-8) and parses it; a read error propagates as it is. */
export async function loadAcl (path: string): Promise<AclRules> {
  return parseAcl(await readFile(path, 'utf8'))
}

function parseRule (keyword: string, rest: string, invalid: (reason: string) => AclFileError): AclRule {
  const [first, after] = firstWord(rest)
  let access: AclAccess = 'readwrite'
  let filter = first
  if (ACCESS.has(first)) {
    access = first as AclAccess
    filter = after
  } else if (after !== '') {
    throw invalid(`unknown access "${first}": expected read, write, readwrite or deny (a filter with spaces needs its access written first)`)
  }
  if (filter === '') throw invalid(`"${keyword}" needs a topic filter`)
  const problem = filterProblem(filter)
  if (problem !== undefined) throw invalid(problem)
  return { access, filter }
}

/** The first word of a trimmed string and the rest, without the spaces between them. */
function firstWord (text: string): [string, string] {
  const match = /^(\S*)\s*([\s\S]*)$/.exec(text) as RegExpExecArray
  return [match[1] as string, match[2] as string]
}

/** Why `filter` is not a valid MQTT topic filter, or undefined if it is. */
function filterProblem (filter: string): string | undefined {
  if (filter.includes('\u0000')) return 'a topic filter cannot contain NUL [MQTT-4.7.3-2]'
  if (Buffer.byteLength(filter) > 65535) return 'a topic filter is at most 65535 bytes [MQTT-4.7.3-3]'
  const levels = filter.split('/')
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) {
      return `"#" must be a whole level and the last one [MQTT-4.7.1-2]: ${filter}`
    }
    if (level.includes('+') && level !== '+') return `"+" must be a whole level [MQTT-4.7.1-3]: ${filter}`
  }
  return undefined
}
