import QlobberSub from 'qlobber/aedes/qlobber-sub.js'
import { decodeValue, encodeValue } from './packet-codec.js'
import { subKey } from './persistence-keys.js'
import { QLOBBER_OPTIONS } from './retained-messages.js'
import type { KeyValueStore, SublevelOp } from './store.js'
import type { WriteBatcher } from './write-batcher.js'

export interface SubRecord { qos: number, rh?: number, rap?: boolean, nl?: boolean, subscriptionIdentifier?: number }
export interface Subscription extends SubRecord { topic: string }
export interface TrieSub extends SubRecord { clientId: string, topic: string }

/**
 * Persistent sessions' subscriptions (sublevel `subscriptions`, key
 * `{clientId}:{filter}`): per client, and in a matcher of the QoS > 0 ones,
 * which Aedes asks who to queue a message for. One filter of a client never
 * removes another of the same client (aedes-persistence-level drops `a/b`
 * when `a/#` goes: test/persistence-choice.test.ts).
 */
export class SubscriptionIndex {
  readonly #sublevel: KeyValueStore
  readonly #writes: WriteBatcher
  readonly #trie = new QlobberSub(QLOBBER_OPTIONS)
  readonly #byClient = new Map<string, Map<string, SubRecord>>()

  constructor (sublevel: KeyValueStore, writes: WriteBatcher) {
    this.#sublevel = sublevel
    this.#writes = writes
  }

  async load (): Promise<void> {
    for await (const [key, value] of this.#sublevel.iterator()) {
      const sep = key.indexOf(':')
      const clientId = decodeURIComponent(key.slice(0, sep))
      const topic = key.slice(sep + 1)
      this.#remember(clientId, topic, decodeValue<SubRecord>(value))
    }
  }

  async add (clientId: string, subs: Subscription[]): Promise<void> {
    const ops: SublevelOp[] = []
    const sublevel = this.#sublevel
    for (const sub of subs) {
      const record: SubRecord = { qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl }
      if (sub.subscriptionIdentifier !== undefined) record.subscriptionIdentifier = sub.subscriptionIdentifier
      this.#remember(clientId, sub.topic, record)
      ops.push({ type: 'put', sublevel, key: subKey(clientId, sub.topic), value: encodeValue(record) })
    }
    await this.#writes.write(ops)
  }

  async remove (clientId: string, topics: string[]): Promise<void> {
    const ops: SublevelOp[] = []
    const sublevel = this.#sublevel
    for (const topic of topics) {
      this.#forget(clientId, topic)
      ops.push({ type: 'del', sublevel, key: subKey(clientId, topic) })
    }
    await this.#writes.write(ops)
  }

  /** The filters of `clientId`, or undefined if it has none. */
  of (clientId: string): ReadonlyMap<string, SubRecord> | undefined {
    return this.#byClient.get(clientId)
  }

  clientIds (): IterableIterator<string> {
    return this.#byClient.keys()
  }

  entries (): IterableIterator<[string, ReadonlyMap<string, SubRecord>]> {
    return this.#byClient.entries()
  }

  get clientCount (): number {
    return this.#byClient.size
  }

  /** QoS > 0 subscriptions. */
  get queueingCount (): number {
    return this.#trie.subscriptionsCount
  }

  match (topic: string): TrieSub[] {
    // Aedes asks for every QoS > 0 publish; with clean-session clients only
    // there is nothing to match, and the trie would still split the topic.
    if (this.#trie.subscriptionsCount === 0) return []
    return this.#trie.match(topic) as TrieSub[]
  }

  /**
   * Whether some QoS > 0 subscription matches `topic`: whether Aedes would
   * queue a message on it for a persistent session (connected or not). Free
   * when there is none at all, the usual case with clean-session clients.
   * A superset of what Aedes queues (it leaves out `$SYS/` topics matched by
   * a leading wildcard, [MQTT-4.7.2-1]), so never an undercount.
   */
  matchesAny (topic: string): boolean {
    return this.#trie.subscriptionsCount > 0 && this.#trie.match(topic).length > 0
  }

  #remember (clientId: string, topic: string, record: SubRecord): void {
    let stored = this.#byClient.get(clientId)
    if (stored === undefined) {
      stored = new Map()
      this.#byClient.set(clientId, stored)
    }
    const previous = stored.get(topic)
    // The matcher holds QoS > 0 subscriptions only: those are the ones that
    // queue messages while the client is away [MQTT-3.1.2-5].
    if (record.qos > 0) {
      this.#trie.add(topic, { clientId, topic, qos: record.qos, rh: record.rh, rap: record.rap, nl: record.nl })
    } else if (previous !== undefined && previous.qos > 0) {
      this.#trie.remove(topic, { clientId, topic })
    }
    stored.set(topic, record)
  }

  #forget (clientId: string, topic: string): void {
    const stored = this.#byClient.get(clientId)
    const previous = stored?.get(topic)
    if (stored === undefined || previous === undefined) return
    if (previous.qos > 0) this.#trie.remove(topic, { clientId, topic })
    stored.delete(topic)
    if (stored.size === 0) this.#byClient.delete(clientId)
  }
}
