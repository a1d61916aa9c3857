import type { ValidationIssue } from '../protocol/errors.js'

/**
 * The deepest nesting of arrays and objects the broker parses from a client
 * unless told otherwise (`tasks.maxJsonDepth` for tasks).
 */
export const DEFAULT_MAX_JSON_DEPTH = 64

export type UntrustedJson = { ok: true, value: unknown } | { ok: false, issue: ValidationIssue }

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Parses JSON that came from a device: tasks, broker commands, wills, group
 * messages the broker annotates (docs/security.md#hostile-input). Refused,
 * with an issue saying why, before any object is built:
 * - bytes that are not UTF-8 (`json`);
 * - nesting deeper than `maxDepth` (`maxDepth`): every later walk of the
 *   value (ajv, JSON.stringify) recurses per level, and a few KB of `[[[[`
 *   overflow the stack;
 * - a key twice in one object (`duplicateKey`): JSON.parse keeps the last,
 *   so a check that read the first would be fooled (RFC 8259 §4);
 * - a `__proto__` key (`forbiddenKey`): harmless to JSON.parse, but one
 *   Object.assign or merge later and it replaces an object's prototype.
 * One pass over the text, no recursion.
 */
export function parseUntrustedJson (bytes: Buffer, maxDepth = DEFAULT_MAX_JSON_DEPTH): UntrustedJson {
  let text: string
  try {
    text = utf8.decode(bytes)
  } catch {
    return { ok: false, issue: { path: '', message: 'must be UTF-8 JSON', keyword: 'json' } }
  }
  const issue = shapeIssue(text, maxDepth)
  if (issue !== null) return { ok: false, issue }
  try {
    return { ok: true, value: JSON.parse(text) as unknown }
  } catch (err) {
    return { ok: false, issue: { path: '', message: `must be JSON: ${(err as Error).message}`, keyword: 'json' } }
  }
}

interface Open {
  /** The keys seen so far, for an object; null for an array. */
  keys: Set<string> | null
  /** In an object: the next string is a key. */
  expectKey: boolean
}

/** The first reason to refuse `text` before parsing it, or null. Malformed JSON is left to JSON.parse. */
function shapeIssue (text: string, maxDepth: number): ValidationIssue | null {
  const open: Open[] = []
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) { // a string: a key, or a value to skip
      const start = i
      let escaped = false
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i)
        if (s === 0x5c) { escaped = true; i++ } else if (s === 0x22) break
      }
      const top = open[open.length - 1]
      if (top?.keys == null || !top.expectKey) continue
      top.expectKey = false
      const key = escaped ? decodeKey(text.slice(start, i + 1)) : text.slice(start + 1, i)
      if (key === null) continue // malformed: JSON.parse will say so
      if (key === '__proto__') return { path: '', message: 'must not have a "__proto__" key', keyword: 'forbiddenKey' }
      if (top.keys.has(key)) return { path: '', message: `must not have the key ${JSON.stringify(key)} twice in one object`, keyword: 'duplicateKey' }
      top.keys.add(key)
    } else if (c === 0x7b || c === 0x5b) { // { [
      if (open.length >= maxDepth) return { path: '', message: `must nest arrays and objects at most ${maxDepth} levels deep`, keyword: 'maxDepth' }
      open.push(c === 0x7b ? { keys: new Set(), expectKey: true } : { keys: null, expectKey: false })
    } else if (c === 0x7d || c === 0x5d) { // } ]
      open.pop()
    } else if (c === 0x2c) { // ,
      const top = open[open.length - 1]
      if (top?.keys != null) top.expectKey = true
    }
  }
  return null
}

function decodeKey (literal: string): string | null {
  try {
    const key: unknown = JSON.parse(literal)
    return typeof key === 'string' ? key : null
  } catch {
    return null
  }
}
