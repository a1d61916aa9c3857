import { Buffer } from 'node:buffer'
import { describe, expect, it } from 'vitest'
import { ownBytes } from '../broker/shared/own-bytes.js'

/** What a group keeps of a waiting message's payload (broker/shared/own-bytes.ts). */
describe('ownBytes', () => {
  it('copies a small slice of a large socket read, so the read can be collected', () => {
    const read = Buffer.alloc(64 * 1024, 7)
    read.write('{"task":1}', 30_000)
    const payload = read.subarray(30_000, 30_010)
    const kept = ownBytes(payload)
    expect(kept.toString()).toBe('{"task":1}')
    expect(kept.buffer).not.toBe(read.buffer)
    expect(kept.buffer.byteLength).toBeLessThanOrEqual(Buffer.poolSize)
  })

  it('keeps a payload that is most of its buffer, or whose buffer is no bigger than the pool', () => {
    const large = Buffer.alloc(64 * 1024)
    const most = large.subarray(0, 20 * 1024)
    expect(ownBytes(most)).toBe(most)
    const pooled = Buffer.from('{"task":2}')
    expect(pooled.buffer.byteLength).toBeLessThanOrEqual(Buffer.poolSize)
    expect(ownBytes(pooled)).toBe(pooled)
    const whole = Buffer.alloc(100 * 1024)
    expect(ownBytes(whole)).toBe(whole)
  })
})
