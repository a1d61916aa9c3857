import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import { withDirectReads } from '../broker/mqtt/internals/read-list.js'

/**
 * Tripwire for broker/mqtt/internals/read-list.ts: the parser's buffer list
 * answers its reads from its first buffer when it can, and otherwise as bl
 * does. bl itself, as mqtt-packet resolves it, is the reference for every
 * read at every offset of lists split in every way, errors included.
 */
interface List {
  length: number
  append (buf: Buffer): unknown
  consume (bytes: number): unknown
  readUInt8 (offset?: number): number
  readUInt16BE (offset?: number): number
  toString (encoding?: BufferEncoding, start?: number, end?: number): string
  slice (start?: number, end?: number): Buffer
}
type ListClass = new () => List

const requireFromMqttPacket = createRequire(createRequire(import.meta.url).resolve('mqtt-packet'))
const BufferList = requireFromMqttPacket('bl').BufferList as ListClass
const DirectReadList = withDirectReads(BufferList as unknown as new () => { length: number }) as unknown as ListClass

const bytes = Buffer.from('\u0032\u000btasks/thumb\u0001\u00ffpayload ☃ with ünïcødé', 'utf8')

function lists (cuts: number[], consumed: number): [List, List] {
  const made: [List, List] = [new BufferList(), new DirectReadList()]
  for (const list of made) {
    let from = 0
    for (const cut of [...cuts, bytes.length]) {
      list.append(bytes.subarray(from, cut))
      from = cut
    }
    list.consume(consumed)
  }
  return made
}

function outcome (read: () => unknown): unknown {
  try {
    const value = read()
    return Buffer.isBuffer(value) ? ['buffer', value.toString('hex')] : ['value', value]
  } catch (err) {
    return ['error', (err as Error).constructor.name]
  }
}

describe('read list: bl BufferList reads without allocation, bl answers', () => {
  it('gives bl\'s answer for readUInt8, readUInt16BE, toString and slice at every offset of lists split and consumed in every way', () => {
    let compared = 0
    const splits = [[], [1], [2], [13], [1, 2, 3], [5, 20], [bytes.length - 1]]
    for (const cuts of splits) {
      for (const consumed of [0, 1, 3]) {
        const [reference, direct] = lists(cuts, consumed)
        const n = reference.length
        for (let offset = -1; offset <= n + 1; offset++) {
          expect(outcome(() => direct.readUInt8(offset)), `readUInt8(${offset}) cuts ${cuts.join(',')} consumed ${consumed}`).toEqual(outcome(() => reference.readUInt8(offset)))
          expect(outcome(() => direct.readUInt16BE(offset)), `readUInt16BE(${offset})`).toEqual(outcome(() => reference.readUInt16BE(offset)))
          for (const end of [offset, offset + 1, offset + 5, n, n + 3]) {
            expect(outcome(() => direct.toString('utf8', offset, end)), `toString(${offset}, ${end})`).toEqual(outcome(() => reference.toString('utf8', offset, end)))
            expect(outcome(() => direct.slice(offset, end)), `slice(${offset}, ${end})`).toEqual(outcome(() => reference.slice(offset, end)))
            compared += 2
          }
          compared += 2
        }
        expect(direct.toString()).toBe(reference.toString())
        expect(direct.slice().equals(reference.slice())).toBe(true)
      }
    }
    expect(compared).toBeGreaterThan(2_000)
  })

  it('a slice inside the first buffer is a view of the bytes read, not a copy, as bl\'s is', () => {
    const [, direct] = lists([], 0)
    const view = direct.slice(2, 13)
    expect(view.toString()).toBe('tasks/thumb')
    expect(view.buffer).toBe(bytes.buffer)
    const whole = new DirectReadList()
    const only = Buffer.from('abc')
    whole.append(only)
    expect(whole.slice(0, 3).buffer).toBe(only.buffer)
    expect(whole.slice(1, 3).buffer).toBe(only.buffer)
  })
})
