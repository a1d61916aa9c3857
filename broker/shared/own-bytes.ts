import { Buffer } from 'node:buffer'

/**
 * `payload`, or a copy of it when it is a small slice of a much larger
 * buffer. mqtt-packet hands a PUBLISH's payload over as a slice of the socket
 * read it came in (up to 64 KB), and a message that waits in a group's queue
 * would keep that whole read alive for as long as it waits, when the other
 * messages of the same read have long gone (docs/benchmarks.md, "The
 * broker's RSS"). A copy of a few hundred bytes lands in Node's shared 8 KB
 * pool; a buffer already that size or smaller is kept as it is.
 */
export function ownBytes (payload: Buffer): Buffer {
  const whole = payload.buffer.byteLength
  if (whole <= Buffer.poolSize || payload.byteLength * 4 >= whole) return payload
  return Buffer.from(payload)
}
