import { outgoingKey } from './persistence-keys.js'
import type { KeyValueStore } from './store.js'
import type { WriteBatcher } from './write-batcher.js'

/**
 * The stored values of `seqs` (ascending, all of one client's queue), from
 * one range read of `outgoing`, with writes not yet in the store taking
 * precedence (docs/durability.md, "Draining a backlog"). When the store
 * closes under the read and `destroyed()` says the persistence is being
 * destroyed, answers nothing: the stream or drain then ends.
 */
export async function readQueueBatch (outgoing: KeyValueStore, writes: WriteBatcher, clientId: string, seqs: number[], destroyed: () => boolean): Promise<Map<number, Buffer>> {
  // Writes not yet stored are taken before the range read starts: one that
  // lands while it runs is then seen either way.
  const unwritten = new Map<number, Buffer | null>()
  for (const seq of seqs) {
    const value = writes.pendingValue(outgoing, outgoingKey(clientId, seq))
    if (value !== undefined) unwritten.set(seq, value)
  }
  const values = new Map<number, Buffer>()
  const range = { gte: outgoingKey(clientId, seqs[0] as number), lte: outgoingKey(clientId, seqs[seqs.length - 1] as number) }
  try {
    for await (const [key, value] of outgoing.iterator(range)) {
      values.set(Number(key.slice(key.lastIndexOf(':') + 1)), value)
    }
  } catch (err) {
    if (destroyed()) return new Map()
    throw err
  }
  for (const [seq, value] of unwritten) {
    if (value === null) values.delete(seq)
    else values.set(seq, value)
  }
  return values
}
