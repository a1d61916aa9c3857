/*
 * Part of the lean-parser.ts patch of mqtt-packet 9 (tripwire: "read list" in
 * test/read-list.test.ts). The parser reads the bytes it buffered through
 * bl's BufferList: `readUInt8` for the fixed header and every byte of the
 * Remaining Length, `readUInt16BE` for lengths and packet identifiers,
 * `toString` for the topic, `slice` for the payload. bl implements each
 * read as `this.slice(offset, offset + n).readX(0)`, and `slice` finds the
 * buffer with `_offset()`, which returns a new array: two objects for every
 * byte read, about 1.2 KB of garbage per QoS 1 message in the broker's
 * allocation profile (docs/benchmarks.md "The broker's RSS").
 *
 * A read that lies inside the list's first buffer, which is every read of a
 * packet that came in one piece, is answered from that buffer directly; any
 * other goes to bl, so the answers, and the errors, are bl's.
 */

interface BufferListInternals {
  _bufs: Buffer[]
  length: number
  readUInt8 (offset?: number): number
  readUInt16BE (offset?: number): number
  toString (encoding?: BufferEncoding, start?: number, end?: number): string
  slice (start?: number, end?: number): Buffer
}

type BufferListClass = new () => { length: number }

/** A subclass of `BufferList` (bl's, as mqtt-packet resolves it) whose reads inside its first buffer allocate nothing but what they return. */
export function withDirectReads (BufferList: BufferListClass): BufferListClass {
  const base = BufferList.prototype as BufferListInternals
  const readUInt8 = base.readUInt8
  const readUInt16BE = base.readUInt16BE
  const toString = base.toString
  const slice = base.slice
  if (typeof readUInt8 !== 'function' || typeof readUInt16BE !== 'function' || typeof toString !== 'function' || typeof slice !== 'function') {
    throw new Error('mqtt-packet internals moved: bl BufferList readUInt8, readUInt16BE, toString and slice are needed (broker/mqtt/internals/read-list.ts)')
  }

  /** `_bufs[0]` when `start`..`end` are whole numbers inside it, else undefined. */
  function firstHolding (list: BufferListInternals, start: unknown, end: unknown): Buffer | undefined {
    const first = list._bufs[0]
    if (first === undefined || typeof start !== 'number' || typeof end !== 'number') return undefined
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end < start || end > first.length) return undefined
    return first
  }

  class DirectReadList extends BufferList {
    readUInt8 (this: BufferListInternals, offset = 0): number {
      const first = firstHolding(this, offset, offset + 1)
      return first === undefined ? readUInt8.call(this, offset) : first[offset] as number
    }

    readUInt16BE (this: BufferListInternals, offset = 0): number {
      const first = firstHolding(this, offset, offset + 2)
      return first === undefined ? readUInt16BE.call(this, offset) : first.readUInt16BE(offset)
    }

    override toString (this: BufferListInternals, encoding?: BufferEncoding, start?: number, end?: number): string {
      const first = firstHolding(this, start, end)
      return first === undefined ? toString.call(this, encoding, start, end) : first.toString(encoding, start, end)
    }

    slice (this: BufferListInternals, start?: number, end?: number): Buffer {
      const first = firstHolding(this, start, end)
      // bl hands back the buffer itself when asked for all of a one-buffer list.
      if (first === undefined || (start === 0 && end === first.length && this._bufs.length === 1)) return slice.call(this, start, end)
      return first.subarray(start, end)
    }
  }
  return DirectReadList as unknown as BufferListClass
}
