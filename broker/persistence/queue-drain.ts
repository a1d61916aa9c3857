import { decodeQueuedPacket, type StoredPacket } from './packet-codec.js'
import type { ClientRef } from './persistence-keys.js'
import { indexEntry, queueWalker, STORED, type ClientQueue } from './queue-index.js'

/** Most messages the drain writer has written to a connection and not seen acknowledged. */
export const DRAIN_WINDOW = 1024

/**
 * How the drain writer reaches a connection (the MQTT adapter implements it
 * over Aedes's client: broker/mqtt/internals/queue-writer.ts).
 */
export interface QueueWriter {
  /** The connection's next packet identifier, from the counter Aedes uses [MQTT-2.3.1-2]. */
  nextPacketId (client: ClientRef): number
  /**
   * Runs `authorizeForward` and writes the packet: 'withheld' if refused,
   * 'closed' if the connection is gone.
   */
  write (client: ClientRef, packet: StoredPacket): 'sent' | 'withheld' | 'closed'
  /** Resolves true once the socket takes more (at once unless past its high-water mark), false if it closed. */
  writable (client: ClientRef): Promise<boolean>
}

/** What the drain needs of the persistence, for one client's queue. */
export interface DrainAccess {
  queue: ClientQueue
  /** The stored values of `seqs` (ascending), from one range read. */
  readBatch: (seqs: number[]) => Promise<Map<number, Buffer>>
  /** `outgoingUpdate`: marks the packet sent, synchronously; resolves once stored. */
  update: (packet: StoredPacket) => Promise<void>
  /** `outgoingClearMessageId`: the packet leaves the queue. */
  clear: (packet: StoredPacket) => Promise<unknown>
  /** Resolves true on the next PUBACK (or update) for the client, false if the connection or the store closed. */
  waitForAck: () => Promise<boolean>
  /** Called in the very turn the walk found nothing left to send. */
  caughtUp: () => void
}

/**
 * The drain writer (docs/durability.md, "Draining a backlog"): writes a
 * client's queue to its connection, oldest first, a range read of
 * STREAM_BATCH messages at a time, all of a range in one turn, with up to
 * DRAIN_WINDOW unacknowledged and the socket's back-pressure respected.
 * Aedes's `emptyQueue` hands over one message per turn (lib/write.js calls
 * back on `setImmediate`), which a running publisher's turns slow to a few
 * hundred a second.
 *
 * Order [MQTT-4.6.0-6]: until it is done, live deliveries to this
 * connection are held back (`shouldDeliverLive`) and stay queued; the walk
 * picks them up behind the backlog. Each message is marked sent (`update`)
 * and written in the same turn, so once the walk finds nothing left, in that
 * same turn, live delivery is in order (`caughtUp`). Per message it does what
 * Aedes's `emptyQueue` does: the stored packet identifier is kept
 * [MQTT-4.4.0-1], DUP set on a re-delivery [MQTT-3.3.1-1], `authorizeForward`
 * applied (withheld: the queued copy goes, as in Aedes's `emptyQueueFilter`).
 */
export async function drainQueue (access: DrainAccess, client: ClientRef, writer: QueueWriter): Promise<void> {
  const { queue } = access
  const next = queueWalker(queue, client, true)
  /** Seqs written by this drain, oldest first, not known to be acknowledged. */
  const unacked: number[] = []
  for (let batch = next(); batch.length > 0; batch = next()) {
    // The window: wait for PUBACKs (outgoingClearMessageId wakes it).
    while (unackedCount(queue, client, unacked) >= DRAIN_WINDOW) {
      if (!await access.waitForAck()) return
    }
    if (!await writer.writable(client)) return // connection gone
    const values = await access.readBatch(batch)
    for (const seq of batch) {
      const value = values.get(seq)
      let entry = queue.bySeq.get(seq)
      if (value === undefined || entry === undefined) continue // acknowledged or dropped meanwhile
      const packet = decodeQueuedPacket(value)
      if (entry === STORED) entry = indexEntry(queue, seq, packet)
      if (packet.cmd === 'publish') {
        if (packet.messageId !== undefined) packet.dup = true
        else packet.messageId = writer.nextPacketId(client)
      }
      entry.streamedTo = client
      const update = access.update(packet) // marks it sent, synchronously
      if (packet.qos === 2 || packet.cmd !== 'publish') {
        // QoS 2: its id is stored before the receiver may hold it [MQTT-4.3.3].
        await update
        if (queue.bySeq.get(seq) !== entry) continue
      } else {
        update.catch(() => undefined) // a failed batch fails every write in it; the ones that wait report it
      }
      const outcome = writer.write(client, packet)
      if (outcome === 'closed') return
      if (outcome === 'withheld') {
        await access.clear(packet)
        continue
      }
      unacked.push(seq)
    }
  }
  // No await since the walk found nothing left: in order from here on.
  access.caughtUp()
}

/** Drops acknowledged (or dropped) seqs from the front of `unacked`; its length after. */
function unackedCount (queue: ClientQueue, client: ClientRef, unacked: number[]): number {
  let acked = 0
  while (acked < unacked.length && queue.bySeq.get(unacked[acked] as number)?.sentTo !== client) acked++
  if (acked > 0) unacked.splice(0, acked)
  return unacked.length
}
