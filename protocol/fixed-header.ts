/**
 * The MQTT fixed header [MQTT-2.2], for the two writers that build a packet
 * in one Buffer rather than through mqtt-packet: the broker's
 * (broker/mqtt/internals/packet-writer.ts) and the worker's result publish
 * (client/direct-publish.ts).
 */

/** [MQTT-2.2.3] the largest Remaining Length, four bytes of variable length. */
export const MAX_REMAINING_LENGTH = 268_435_455

/** How many bytes `remaining` takes as a Remaining Length. */
export function remainingLengthBytes (remaining: number): number {
  return remaining < 0x80 ? 1 : remaining < 0x4000 ? 2 : remaining < 0x200000 ? 3 : 4
}

/**
 * Writes the first byte (`type`: packet type and flags) and the Remaining
 * Length at the start of `buffer`; returns where the variable header starts.
 * [MQTT-2.2.3] 7 bits a byte, low first, the high bit set when more follow.
 */
export function writeFixedHeader (buffer: Buffer, type: number, remaining: number): number {
  buffer[0] = type
  let offset = 1
  let rest = remaining
  do {
    let byte = rest % 0x80
    rest = Math.floor(rest / 0x80)
    if (rest > 0) byte |= 0x80
    buffer[offset++] = byte
  } while (rest > 0)
  return offset
}
