import { describe, expect, it } from 'vitest'
import { parseUntrustedJson } from '../broker/untrusted-json.js'

/*
 * parseUntrustedJson's refusals (docs/security.md#hostile-input), through both
 * ways it tracks an object's keys: a scan of the text for objects of up to 16
 * unescaped keys, and a Set beyond that or once a key is escaped. The broker
 * paths that use it (the task gate, group annotations) are covered end to end
 * in test/hostile-input.test.ts; these pin the check itself, key by key.
 */

const keyword = (text: string, maxDepth?: number): string | null => {
  const parsed = parseUntrustedJson(Buffer.from(text), maxDepth)
  return parsed.ok ? null : parsed.issue.keyword
}

/** `{"k0":0,...}` with `n` keys, then `extra` (already formatted, with its leading comma) before the brace. */
const objectOf = (n: number, extra = ''): string =>
  `{${Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(',')}${extra}}`

describe('parseUntrustedJson', () => {
  it('parses a task envelope and returns its value', () => {
    const envelope = { id: 'a1', type: 'thumbnail', payload: { imageUrl: 'https://e.com/x.jpg', width: 3, height: 4 }, attempt: 1 }
    expect(parseUntrustedJson(Buffer.from(JSON.stringify(envelope)))).toEqual({ ok: true, value: envelope })
  })

  it('refuses a key twice in a small object, in a large one, and across the move to a Set', () => {
    expect(keyword('{"a":1,"b":2,"a":3}')).toBe('duplicateKey')
    expect(keyword(objectOf(40, ',"k39":1'))).toBe('duplicateKey')
    // The first key is compared in the text, the duplicate after the 17th key in the Set.
    expect(keyword(objectOf(20, ',"k0":1'))).toBe('duplicateKey')
    expect(keyword(objectOf(16, ',"k3":1'))).toBe('duplicateKey')
    expect(keyword(objectOf(40))).toBeNull()
  })

  it('names the duplicated key', () => {
    const parsed = parseUntrustedJson(Buffer.from('{"width":1,"height":2,"width":3}'))
    expect(parsed).toEqual({ ok: false, issue: { path: '', keyword: 'duplicateKey', message: 'must not have the key "width" twice in one object' } })
  })

  it('compares keys as JSON.parse reads them: an escaped key equal to an earlier plain one is a duplicate', () => {
    expect(keyword('{"ab":1,"\\u0061b":2}')).toBe('duplicateKey')
    expect(keyword('{"\\u0061b":1,"ab":2}')).toBe('duplicateKey')
    expect(keyword('{"a\\"b":1,"a\\u0022b":2}')).toBe('duplicateKey')
    expect(keyword('{"ab":1,"a\\u0062c":2}')).toBeNull()
  })

  it('does not confuse keys of the same length and prefix', () => {
    expect(keyword('{"abc":1,"abd":2,"ab":3,"abcd":4}')).toBeNull()
  })

  it('keeps keys per object: nested and sibling objects may reuse a name, the parent may not after a child closes', () => {
    expect(keyword('{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}')).toBeNull()
    expect(keyword('{"a":{"b":1,"c":2},"b":2,"c":3}')).toBeNull()
    expect(keyword('{"a":{"b":1},"a":2}')).toBe('duplicateKey')
    expect(keyword(`{"x":${objectOf(30)},"y":${objectOf(3)},"x":1}`)).toBe('duplicateKey')
    expect(keyword(`[${objectOf(30)},${objectOf(30)}]`)).toBeNull()
  })

  it('reads braces, quotes and commas inside strings as text', () => {
    expect(keyword('{"a":"{\\"a\\":1,","b":"}]","c":"\\\\"}')).toBeNull()
    expect(keyword('{"a":"x,\\"a\\":","a":1}')).toBe('duplicateKey')
  })

  it('refuses a __proto__ key, plain or escaped, in a small or a large object', () => {
    expect(keyword('{"__proto__":{"admin":true}}')).toBe('forbiddenKey')
    expect(keyword('{"a":{"\\u005f_proto__":1}}')).toBe('forbiddenKey')
    expect(keyword(objectOf(20, ',"__proto__":1'))).toBe('forbiddenKey')
    expect(keyword('{"__proto_":1,"__proto__x":2}')).toBeNull()
  })

  it('refuses nesting deeper than the limit', () => {
    expect(keyword('[[[1]]]', 3)).toBeNull()
    expect(keyword('[[[[1]]]]', 3)).toBe('maxDepth')
    expect(keyword('{"a":{"b":{"c":{}}}}', 3)).toBe('maxDepth')
  })

  it('refuses bytes that are not UTF-8, and malformed JSON', () => {
    expect(parseUntrustedJson(Buffer.from([0x7b, 0xff, 0x7d])).ok).toBe(false)
    expect(keyword('{"a":1')).toBe('json')
    expect(keyword('{"a":1]}')).toBe('json')
    expect(keyword('}}{"a"')).toBe('json')
  })

  it('starts each call afresh after a refusal or malformed text', () => {
    expect(keyword(`{"a":{"b":${objectOf(30)},"c":1}`)).toBe('json') // left open
    expect(keyword(objectOf(20, ',"k0":1'))).toBe('duplicateKey')
    expect(keyword('{"k0":1}')).toBeNull()
    expect(keyword('{"a":{"b":{"c":1,"c":2}}}')).toBe('duplicateKey')
    expect(keyword('{"c":1,"b":{"c":2}}')).toBeNull()
  })
})
