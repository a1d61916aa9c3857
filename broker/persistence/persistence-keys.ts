import type { KeyValueStore, RangeOptions } from './store.js'
import type { WriteBatcher } from './write-batcher.js'

/*
 * Key formats of the Aedes persistence's sublevels (docs/keyspace.md). The
 * client id is URI-encoded, so ':' cannot appear inside it:
 *   retained       {topic}                   retained packet
 *   subscriptions  {clientId}:{filter}       subscription { qos, rh, rap, nl }
 *   outgoing       {clientId}:{seq}          queued outgoing packet, in seq order
 *   outgoing       #dropped:{clientId}       messages dropped at the queue bound
 *   incoming       {clientId}:{messageId}    incoming QoS 2 packet awaiting PUBREL
 *   wills          {clientId}                will
 */

/** A connection as the persistence sees it: Aedes's client object. */
export interface ClientRef { id: string }

export const SEQ_DIGITS = 16
export const pad = (n: number): string => n.toString().padStart(SEQ_DIGITS, '0')
export const enc = (clientId: string): string => encodeURIComponent(clientId)

/**
 * Per-client drop totals live in the `outgoing` sublevel under this prefix
 * (docs/keyspace.md): `#` is escaped by encodeURIComponent, so no queue key
 * (`{clientId}:{seq}`) starts with it, and it sorts before all of them.
 */
export const DROPPED_PREFIX = '#dropped:'
export const DROPPED_END = '#dropped;'

export function counterKey (packet: { brokerId?: string | null, brokerCounter?: number }): string {
  return `${packet.brokerId ?? ''}:${packet.brokerCounter ?? 0}`
}

export function subKey (clientId: string, topic: string): string {
  return `${enc(clientId)}:${topic}`
}

export function outgoingKey (clientId: string, seq: number): string {
  return `${enc(clientId)}:${pad(seq)}`
}

export function incomingKey (clientId: string, messageId: number | undefined): string {
  return `${enc(clientId)}:${pad(messageId ?? 0)}`
}

/** The first key of `range` (with `reverse`, the last), or undefined. */
export async function firstKey (store: KeyValueStore, range: RangeOptions): Promise<string | undefined> {
  for await (const key of store.keys({ ...range, limit: 1 })) return key
  return undefined
}

/**
 * The keys of `range`, many per step: abstract-level's `nextv` where the
 * store has it (LevelDB, memory-level), instead of a promise per key, which
 * costs more than reading the key.
 */
export async function * keyChunks (store: KeyValueStore, range: RangeOptions, size: number): AsyncGenerator<string[]> {
  const keys = store.keys(range) as AsyncIterable<string> & { nextv?: (size: number) => Promise<string[]>, close?: () => Promise<void> }
  if (keys.nextv === undefined || keys.close === undefined) {
    for await (const key of keys) yield [key]
    return
  }
  try {
    for (;;) {
      const chunk = await keys.nextv(size)
      if (chunk.length === 0) return
      yield chunk
    }
  } finally {
    await keys.close()
  }
}

/** A stored value, with a write not yet in the store taking precedence. */
export async function readValue (writes: WriteBatcher, sublevel: KeyValueStore, key: string): Promise<Buffer | undefined> {
  const pending = writes.pendingValue(sublevel, key)
  if (pending !== undefined) return pending === null ? undefined : pending
  return sublevel.get(key)
}
