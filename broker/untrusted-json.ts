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

/**
 * Objects with up to this many keys are checked for duplicates by comparing
 * the keys where they stand in the text, building no string; a larger one,
 * or one with an escaped key, moves its keys to a Set, which keeps a large
 * object linear. Task envelopes have about ten keys, and every submission
 * is parsed here by the task gate: the scan took a 322-byte envelope's
 * parse from 2.6 to 1.8 µs (a Set and a string per key were most of it).
 */
const SCAN_KEYS = 16

// The open containers, by depth, and the keys of the open objects, as flat
// stacks reused by every call: shapeIssue is synchronous and never re-enters,
// and an object per container was most of its allocation.
/** Per open container: the index in keyStart of its first key; -1 for an array. */
const base: number[] = []
/** Per open container: in an object, the next string is a key. */
const expectKey: boolean[] = []
/** Per open container: its keys once they have moved to a Set, else null. */
const keySets: Array<Set<string> | null> = []
/** Where each key of the open objects starts and ends in the text (the characters between the quotes, unescaped). */
const keyStart: number[] = []
const keyEnd: number[] = []

const PROTO = '__proto__'
const protoIssue = (): ValidationIssue => ({ path: '', message: 'must not have a "__proto__" key', keyword: 'forbiddenKey' })
const duplicateIssue = (key: string): ValidationIssue => ({ path: '', message: `must not have the key ${JSON.stringify(key)} twice in one object`, keyword: 'duplicateKey' })

/** The first reason to refuse `text` before parsing it, or null. Malformed JSON is left to JSON.parse. */
function shapeIssue (text: string, maxDepth: number): ValidationIssue | null {
  try {
    return scan(text, maxDepth)
  } finally {
    // Hold no key Set of this text until the next call (after a refusal, or
    // an object left open by malformed JSON).
    keySets.fill(null)
  }
}

function scan (text: string, maxDepth: number): ValidationIssue | null {
  let depth = 0
  let keys = 0
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22) { // a string: a key, or a value to skip
      const start = i
      let escaped = false
      for (i++; i < text.length; i++) {
        const s = text.charCodeAt(i)
        if (s === 0x5c) { escaped = true; i++ } else if (s === 0x22) break
      }
      if (depth === 0) continue
      const top = depth - 1
      const first = base[top] as number
      if (first < 0 || expectKey[top] !== true) continue
      expectKey[top] = false
      let set = keySets[top] ?? null
      if (set === null && (escaped || keys - first >= SCAN_KEYS)) {
        set = new Set()
        for (let k = first; k < keys; k++) set.add(text.slice(keyStart[k], keyEnd[k]))
        keySets[top] = set
        keys = first
      }
      if (set === null) {
        const from = start + 1
        const length = i - from
        if (length === PROTO.length && text.startsWith(PROTO, from)) return protoIssue()
        for (let k = first; k < keys; k++) {
          if ((keyEnd[k] as number) - (keyStart[k] as number) === length && sameChars(text, keyStart[k] as number, from, length)) {
            return duplicateIssue(text.slice(from, i))
          }
        }
        keyStart[keys] = from
        keyEnd[keys] = i
        keys++
        continue
      }
      const key = escaped ? decodeKey(text.slice(start, i + 1)) : text.slice(start + 1, i)
      if (key === null) continue // malformed: JSON.parse will say so
      if (key === PROTO) return protoIssue()
      if (set.has(key)) return duplicateIssue(key)
      set.add(key)
    } else if (c === 0x7b || c === 0x5b) { // { [
      if (depth >= maxDepth) return { path: '', message: `must nest arrays and objects at most ${maxDepth} levels deep`, keyword: 'maxDepth' }
      base[depth] = c === 0x7b ? keys : -1
      expectKey[depth] = c === 0x7b
      keySets[depth] = null
      depth++
    } else if (c === 0x7d || c === 0x5d) { // } ]
      if (depth === 0) continue // malformed: JSON.parse will say so
      depth--
      const first = base[depth] as number
      if (first >= 0) keys = first
      keySets[depth] = null
    } else if (c === 0x2c) { // ,
      if (depth > 0 && (base[depth - 1] as number) >= 0) expectKey[depth - 1] = true
    }
  }
  return null
}

/** Whether text[a, a + length) and text[b, b + length) are the same characters. */
function sameChars (text: string, a: number, b: number, length: number): boolean {
  for (let k = 0; k < length; k++) {
    if (text.charCodeAt(a + k) !== text.charCodeAt(b + k)) return false
  }
  return true
}

function decodeKey (literal: string): string | null {
  try {
    const key: unknown = JSON.parse(literal)
    return typeof key === 'string' ? key : null
  } catch {
    return null
  }
}
