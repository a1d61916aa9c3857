import { decodeValue, encodeValue } from '../persistence/packet-codec.js'
import { prefixRange, type BatchWriter, type KeyValueStore, type SublevelOp } from '../persistence/store.js'
import { WriteBatcher } from '../persistence/write-batcher.js'
import type { GroupDefinition, GroupMessage, GroupStore, StoredGroup } from './group-store.js'

// Keys, in two sublevels of the broker's database (one database, one lock;
// docs/keyspace.md):
//   group-definitions  {groupKey}          group definition
//   group-messages     {groupKey}:{seq}    queued message
//   group-messages     {groupKey}:sent     highest seq sent in order (sentThrough)
// The group key is URI-encoded so its '/' and ':' cannot end the prefix early.
const pad = (n: number): string => n.toString().padStart(16, '0')
const enc = encodeURIComponent

const messagePrefix = (key: string): string => `${enc(key)}:`
const messageKey = (key: string, seq: number): string => `${messagePrefix(key)}${pad(seq)}`
/** After every `{seq}` of its group (letters sort after digits), inside its prefix range, so deleteGroup takes it too. */
const SENT_SUFFIX = 'sent'
const sentKey = (key: string): string => `${messagePrefix(key)}${SENT_SUFFIX}`

/** Nothing here reads a key back before its batch lands (write-batcher.ts). */
const UNTRACKED = { untracked: true } as const

interface StoredMessage { topic: string, payload: Buffer, qos: 0 | 1, enqueuedAt: number, deliveries: number }

/** The group store's sublevels. */
export interface GroupSublevels {
  definitions: KeyValueStore
  messages: KeyValueStore
}

interface SentMark {
  seq: number
  /** The write of the mark queued and not yet encoded: later marks in the same batch ride on it. */
  queued: Promise<void> | null
}

export class LevelGroupStore implements GroupStore {
  readonly #definitions: KeyValueStore
  readonly #messages: KeyValueStore
  readonly #writes: WriteBatcher
  /** Appended messages whose batch has not been encoded yet, with that write: an update before then is already in it. */
  readonly #unencoded = new WeakMap<GroupMessage, Promise<void>>()
  readonly #marks = new Map<string, SentMark>()
  #seq = 0

  constructor ({ definitions, messages }: GroupSublevels, writer: BatchWriter) {
    this.#definitions = definitions
    this.#messages = messages
    // The keyspace's one batcher, shared with the publish journal: a QoS 1
    // message's journal entry and its group copy land in the same batches
    // (group commit, write-batcher.ts). Batches run in series, which keeps
    // a message's append before its removal.
    this.#writes = WriteBatcher.for(writer)
  }

  async load (): Promise<StoredGroup[]> {
    const groups = new Map<string, StoredGroup>()
    const marks = new Map<string, number>()
    const orphans: SublevelOp[] = []
    for await (const [, value] of this.#definitions.iterator()) {
      const definition = decodeValue<GroupDefinition>(value)
      groups.set(definition.key, { definition, messages: [] })
    }
    for await (const [key, value] of this.#messages.iterator()) {
      const sep = key.lastIndexOf(':')
      const groupKey = decodeURIComponent(key.slice(0, sep))
      const group = groups.get(groupKey)
      if (group === undefined) {
        // its group was deleted and the broker stopped before the messages went
        orphans.push({ type: 'del', sublevel: this.#messages, key })
        continue
      }
      const suffix = key.slice(sep + 1)
      if (suffix === SENT_SUFFIX) {
        marks.set(groupKey, Number(value.toString('latin1')))
        continue
      }
      const seq = Number(suffix)
      this.#seq = Math.max(this.#seq, seq)
      const stored = decodeValue<StoredMessage>(value)
      group.messages.push({ seq, ...stored, payload: Buffer.from(stored.payload) })
    }
    for (const [groupKey, mark] of marks) {
      this.#marks.set(groupKey, { seq: mark, queued: null })
      for (const message of groups.get(groupKey)?.messages ?? []) {
        if (message.seq <= mark && message.deliveries === 0) message.deliveries = 1
      }
    }
    await this.#writes.write(orphans, UNTRACKED)
    return [...groups.values()]
  }

  nextSeq (): number {
    return ++this.#seq
  }

  async saveGroup (definition: GroupDefinition): Promise<void> {
    await this.#writes.write([{ type: 'put', sublevel: this.#definitions, key: enc(definition.key), value: encodeValue(definition) }], UNTRACKED)
  }

  async deleteGroup (key: string): Promise<void> {
    this.#marks.delete(key)
    await this.#writes.write([{ type: 'del', sublevel: this.#definitions, key: enc(key) }], UNTRACKED)
    await this.#writes.idle()
    const ops: SublevelOp[] = []
    for await (const k of this.#messages.keys(prefixRange(messagePrefix(key)))) ops.push({ type: 'del', sublevel: this.#messages, key: k })
    await this.#writes.write(ops, UNTRACKED)
  }

  append (key: string, message: GroupMessage): Promise<void> {
    // Encoded when its batch is written: a first send in the same turn
    // (the common case when members have room) is then stored with the
    // message, and needs no update of its own.
    const written = this.#writes.write([{
      type: 'put',
      sublevel: this.#messages,
      key: messageKey(key, message.seq),
      encode: () => {
        this.#unencoded.delete(message)
        return encode(message)
      }
    }], UNTRACKED)
    this.#unencoded.set(message, written)
    return written
  }

  update (key: string, message: GroupMessage): Promise<void> {
    return this.#unencoded.get(message) ??
      this.#writes.write([{ type: 'put', sublevel: this.#messages, key: messageKey(key, message.seq), value: encode(message) }], UNTRACKED)
  }

  sentThrough (key: string, message: GroupMessage): Promise<void> {
    const seq = message.seq
    let mark = this.#marks.get(key)
    if (mark === undefined) {
      mark = { seq: 0, queued: null }
      this.#marks.set(key, mark)
    }
    if (seq > mark.seq) mark.seq = seq
    if (mark.queued !== null) return mark.queued
    // Its own record is not written yet and will carry the count: no mark needed for it.
    const unencoded = this.#unencoded.get(message)
    if (unencoded !== undefined) return unencoded
    const current = mark
    const written = this.#writes.write([{
      type: 'put',
      sublevel: this.#messages,
      key: sentKey(key),
      encode: () => {
        current.queued = null
        return Buffer.from(String(current.seq), 'latin1')
      }
    }], UNTRACKED)
    current.queued = written
    return written
  }

  remove (key: string, seqs: number[]): Promise<void> {
    // The batch's own promise: no async wrapper per acknowledged message.
    return this.#writes.write(seqs.map((seq) => ({ type: 'del' as const, sublevel: this.#messages, key: messageKey(key, seq) })), UNTRACKED)
  }

  async flush (): Promise<void> {
    await this.#writes.idle()
  }
}

function encode (message: GroupMessage): Buffer {
  const stored: StoredMessage = {
    topic: message.topic,
    payload: message.payload,
    qos: message.qos,
    enqueuedAt: message.enqueuedAt,
    deliveries: message.deliveries
  }
  return encodeValue(stored)
}
