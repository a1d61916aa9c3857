import type { StoredPacket } from './packet-codec.js'
import { counterKey, type ClientRef } from './persistence-keys.js'

/*
 * The in-memory index of a client's queue (sublevel `outgoing`, key
 * `{clientId}:{seq}`): which messages it holds, in seq order, and what was
 * done with each; the messages themselves stay in the store.
 */

export interface QueueEntry {
  brokerId: string | null
  brokerCounter: number
  messageId: number | undefined
  /** The connection (Aedes client object) it was last written to. */
  sentTo?: object
  /** The connection whose queue stream last handed it out (see `outgoingUpdate`). */
  streamedTo?: object
}

export interface ClientQueue {
  /** In seq order: entries are only ever added with a seq above every other (the seq rises). */
  bySeq: Map<number, QueueEntry>
  byCounter: Map<string, number>
  byMessageId: Map<number, number>
  /**
   * Creation numbers of indexed messages dropped at the bound, most recent
   * last (at most DROPPED_REMEMBERED): their live delivery may still be on
   * its way, and must not overtake a backlog being streamed; and one Aedes
   * is about to write must not be queued again (`outgoingUpdate`).
   */
  dropped: Set<string>
}

/** Drops remembered per client (`ClientQueue.dropped`); a message dropped longer ago has long been delivered live or not. */
export const DROPPED_REMEMBERED = 1024

/** Messages a queue stream reads per store read. */
export const STREAM_BATCH = 256

export function newClientQueue (): ClientQueue {
  return { bySeq: new Map(), byCounter: new Map(), byMessageId: new Map(), dropped: new Set() }
}

/**
 * The entry of every queued message stored by an earlier broker, until it is
 * streamed: then its value is read and it gets an entry of its own
 * (`indexEntry`). Such a message is in no index but `bySeq`: it was created
 * by an earlier broker, so no live delivery looks for it by creation number,
 * and its message id, if it has one, is that of a connection gone. One shared
 * object, so a big queue costs a Map slot per message, not a decoded record.
 */
export const STORED: Readonly<QueueEntry> = Object.freeze({ brokerId: null, brokerCounter: 0, messageId: undefined })

/** Indexes `packet` as queue entry `seq` (new, or replacing a STORED one). */
export function indexEntry (queue: ClientQueue, seq: number, packet: Partial<StoredPacket>): QueueEntry {
  const entry: QueueEntry = {
    brokerId: packet.brokerId ?? null,
    brokerCounter: packet.brokerCounter ?? 0,
    messageId: packet.messageId
  }
  queue.bySeq.set(seq, entry)
  queue.byCounter.set(counterKey(entry), seq)
  if (entry.messageId !== undefined) queue.byMessageId.set(entry.messageId, seq)
  return entry
}

/** Remembers that the indexed `entry` was dropped at the bound (`ClientQueue.dropped`). */
export function rememberDropped (queue: ClientQueue, entry: QueueEntry): void {
  queue.dropped.add(counterKey(entry))
  if (queue.dropped.size > DROPPED_REMEMBERED) queue.dropped.delete(queue.dropped.values().next().value as string)
}

/**
 * Walks a client's queue for its stream, in seq order, yielding up to
 * `limit` seqs above the last one taken of entries still to send on `client`
 * (with `track`, those not already written to this very connection). It keeps
 * its place in the Map between calls (a Map iterator sees entries added after
 * it started, and skips deleted ones), so a backlog of n costs O(n), not a
 * scan from the front per batch; only once the walk reached the end does the
 * next call start again from the front.
 */
export function queueWalker (queue: ClientQueue, client: ClientRef, track: boolean): (limit?: number) => number[] {
  let cursor = 0
  let walk: Iterator<[number, QueueEntry]> | null = null
  return (limit = STREAM_BATCH) => {
    const seqs: number[] = []
    for (;;) {
      walk ??= queue.bySeq.entries()
      const step = walk.next()
      if (step.done === true) {
        walk = null
        break
      }
      const [seq, entry] = step.value
      if (seq <= cursor || (track && entry.sentTo === client)) continue
      seqs.push(seq)
      if (seqs.length === limit) break
    }
    if (seqs.length > 0) cursor = seqs[seqs.length - 1] as number
    return seqs
  }
}
