import { decodeValue, encodeValue } from '../persistence/packet-codec.js'
import { prefixRange, type BatchWriter, type KeyValueStore, type SublevelOp } from '../persistence/store.js'
import { WriteBatcher } from '../persistence/write-batcher.js'
import type { GroupDefinition, GroupMessage, GroupStore, StoredGroup } from './group-store.js'

// Keys, in two sublevels of the broker's database (one database, one lock;
// docs/keyspace.md):
//   group-definitions  {groupKey}          group definition
//   group-messages     {groupKey}:{seq}    queued message
// The group key is URI-encoded so its '/' and ':' cannot end the prefix early.
const pad = (n: number): string => n.toString().padStart(16, '0')
const enc = encodeURIComponent

const messagePrefix = (key: string): string => `${enc(key)}:`
const messageKey = (key: string, seq: number): string => `${messagePrefix(key)}${pad(seq)}`

interface StoredMessage { topic: string, payload: Buffer, qos: 0 | 1, enqueuedAt: number, deliveries: number }

/** The group store's sublevels. */
export interface GroupSublevels {
  definitions: KeyValueStore
  messages: KeyValueStore
}

export class LevelGroupStore implements GroupStore {
  readonly #definitions: KeyValueStore
  readonly #messages: KeyValueStore
  readonly #writes: WriteBatcher
  #seq = 0

  constructor ({ definitions, messages }: GroupSublevels, writer: BatchWriter) {
    this.#definitions = definitions
    this.#messages = messages
    // Its own batcher: one batch in flight at a time for group writes, which
    // keeps a message's append before its removal.
    this.#writes = new WriteBatcher(writer)
  }

  async load (): Promise<StoredGroup[]> {
    const groups = new Map<string, StoredGroup>()
    const orphans: SublevelOp[] = []
    for await (const [, value] of this.#definitions.iterator()) {
      const definition = decodeValue<GroupDefinition>(value)
      groups.set(definition.key, { definition, messages: [] })
    }
    for await (const [key, value] of this.#messages.iterator()) {
      const sep = key.lastIndexOf(':')
      const groupKey = decodeURIComponent(key.slice(0, sep))
      const seq = Number(key.slice(sep + 1))
      this.#seq = Math.max(this.#seq, seq)
      const group = groups.get(groupKey)
      if (group === undefined) {
        // its group was deleted and the broker stopped before the messages went
        orphans.push({ type: 'del', sublevel: this.#messages, key })
        continue
      }
      const stored = decodeValue<StoredMessage>(value)
      group.messages.push({ seq, ...stored, payload: Buffer.from(stored.payload) })
    }
    await this.#writes.write(orphans)
    return [...groups.values()]
  }

  nextSeq (): number {
    return ++this.#seq
  }

  async saveGroup (definition: GroupDefinition): Promise<void> {
    await this.#writes.write([{ type: 'put', sublevel: this.#definitions, key: enc(definition.key), value: encodeValue(definition) }])
  }

  async deleteGroup (key: string): Promise<void> {
    await this.#writes.write([{ type: 'del', sublevel: this.#definitions, key: enc(key) }])
    await this.#writes.idle()
    const ops: SublevelOp[] = []
    for await (const k of this.#messages.keys(prefixRange(messagePrefix(key)))) ops.push({ type: 'del', sublevel: this.#messages, key: k })
    await this.#writes.write(ops)
  }

  async append (key: string, message: GroupMessage): Promise<void> {
    await this.#writes.write([{ type: 'put', sublevel: this.#messages, key: messageKey(key, message.seq), value: encode(message) }])
  }

  async update (key: string, message: GroupMessage): Promise<void> {
    await this.#writes.write([{ type: 'put', sublevel: this.#messages, key: messageKey(key, message.seq), value: encode(message) }])
  }

  async remove (key: string, seqs: number[]): Promise<void> {
    await this.#writes.write(seqs.map((seq) => ({ type: 'del' as const, sublevel: this.#messages, key: messageKey(key, seq) })))
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
