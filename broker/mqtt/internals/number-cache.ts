import mqttPacket from 'mqtt-packet'

/*
 * mqtt-packet's `writeToStream.cacheNumbers` (a documented option; tripwire
 * "number cache" in test/aedes-tripwires.test.ts). By default mqtt-packet
 * builds, at the first packet it writes, a table of 65,536 two-byte Buffers
 * for packet identifiers: about 7 MB of heap held for the process's life.
 * Without it, each identifier written is a 2-byte slice of Node's buffer pool.
 * The setting is global to the mqtt-packet module, which Aedes and this
 * adapter share.
 */
export function skipNumberCache (): void {
  (mqttPacket.writeToStream as unknown as { cacheNumbers: boolean }).cacheNumbers = false
}
