import { EventEmitter } from 'node:events'
import { Readable } from 'node:stream'
import { QlobberTrue } from 'qlobber'
import QlobberSub from 'qlobber/aedes/qlobber-sub.js'
import { decodePacket, decodeQueuedPacket, decodeValue, encodePacket, encodeQueuedPacket, encodeValue, type StoredPacket } from './packet-codec.js'
import { prefixRange, type KeyValueStore, type RangeOptions, type SublevelOp } from './store.js'
import type { WriteBatcher } from './write-batcher.js'

/*
 * fleetq's aedes persistence, on any abstract-level store (LevelDB on disk,
 * memory-level for --persistence memory). Chosen over aedes-persistence-level
 * 9.2 because of what test/persistence-choice.test.ts shows that one does:
 * - overlapping filters of one client (`a/#` then `a/b`) drop a subscription
 *   from its matcher, so offline messages for it are never queued;
 * - queue keys sort by a random broker id, so a queue filled across two broker
 *   lifetimes is replayed out of order;
 * - queues are unbounded.
 * Here queue keys carry a store-wide sequence number (order survives restarts),
 * queues are bounded per client, and writes are coalesced (write-batcher.ts;
 * the publish journal, journal-store.ts, shares the batcher, so a QoS 1
 * publish's journal entry and queue entries land in the same batches).
 *
 * Keys, one sublevel each (clientId is URI-encoded so ':' cannot appear
 * inside it; docs/keyspace.md):
 *   retained       {topic}                   retained packet
 *   subscriptions  {clientId}:{filter}       subscription { qos, rh, rap, nl }
 *   outgoing       {clientId}:{seq}          queued outgoing packet, in seq order
 *   incoming       {clientId}:{messageId}    incoming QoS 2 packet awaiting PUBREL
 *   wills          {clientId}                will
 */

const QLOBBER_OPTIONS = {
  wildcard_one: '+',
  wildcard_some: '#',
  separator: '/',
  match_empty_levels: true // [MQTT-4.7.1-3]
}

const SEQ_DIGITS = 16
const pad = (n: number): string => n.toString().padStart(SEQ_DIGITS, '0')
const enc = (clientId: string): string => encodeURIComponent(clientId)

interface ClientRef { id: string }
interface SubRecord { qos: number, rh?: number, rap?: boolean, nl?: boolean, subscriptionIdentifier?: number }
interface Subscription extends SubRecord { topic: string }
interface TrieSub extends SubRecord { clientId: string, topic: string }

interface QueueEntry {
  brokerId: string | null
  brokerCounter: number
  messageId: number | undefined
  /** The connection (Aedes client object) it was last written to. */
  sentTo?: object
  /** The connection whose queue stream last handed it to Aedes (see `outgoingUpdate`). */
  streamedTo?: object
}

interface ClientQueue {
  /** In seq order: entries are only ever added with a seq above every other (`#seq` rises). */
  bySeq: Map<number, QueueEntry>
  byCounter: Map<string, number>
  byMessageId: Map<number, number>
  /**
   * Creation numbers of messages of this broker's lifetime dropped at the
   * bound, most recent last (at most DROPPED_REMEMBERED): their live delivery
   * may still be on its way, and must not overtake a backlog being streamed.
   */
  dropped: Set<string>
}

/**
 * Per-client drop totals live in the `outgoing` sublevel under this prefix
 * (docs/keyspace.md): `#` is escaped by encodeURIComponent, so no queue key
 * (`{clientId}:{seq}`) starts with it, and it sorts before all of them.
 */
const DROPPED_PREFIX = '#dropped:'
const DROPPED_END = '#dropped;'

/**
 * The entry of every queued message loaded on start, until it is streamed:
 * then its value is read and it gets an entry of its own (`indexEntry`). Such
 * a message is in no index but `bySeq`: it was created by an earlier broker,
 * so no live delivery looks for it by creation number, and its message id, if
 * it has one, is that of a connection gone. One shared object, so a big queue
 * costs a Map slot per message on start, not a decoded record.
 */
const STORED: Readonly<QueueEntry> = Object.freeze({ brokerId: null, brokerCounter: 0, messageId: undefined })

/** Keys read per step on start. */
const KEY_CHUNK = 50_000

/**
 * The keys of `range`, many per step: abstract-level's `nextv` where the
 * store has it (LevelDB, memory-level), instead of a promise per key, which
 * on start costs more than reading the key.
 */
async function * keyChunks (store: KeyValueStore, range: RangeOptions): AsyncGenerator<string[]> {
  const keys = store.keys(range) as AsyncIterable<string> & { nextv?: (size: number) => Promise<string[]>, close?: () => Promise<void> }
  if (keys.nextv === undefined || keys.close === undefined) {
    for await (const key of keys) yield [key]
    return
  }
  try {
    for (;;) {
      const chunk = await keys.nextv(KEY_CHUNK)
      if (chunk.length === 0) return
      yield chunk
    }
  } finally {
    await keys.close()
  }
}

/** Indexes `packet` as queue entry `seq` (new, or replacing a STORED one). */
function indexEntry (queue: ClientQueue, seq: number, packet: Partial<StoredPacket>): QueueEntry {
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

/** Drops remembered per client for `shouldDeliverLive`; a message dropped longer ago has long been delivered live or not. */
const DROPPED_REMEMBERED = 1024

export interface LevelPersistenceOptions {
  /**
   * Most messages queued for one persistent-session client, connected or not.
   * At the bound the oldest queued message is dropped to make room for the new
   * one, in the same batch; `queue-overflow` is emitted and the drop counted,
   * also durably per client (`droppedTotals`). 0 = unbounded.
   * docs/durability.md, "Queue limit".
   * @defaultValue 100000
   */
  maxQueuedPerClient?: number
  /**
   * Broker-side delivery bookkeeping, which aedes-persistence's suite (packets
   * back exactly as stored) does not expect, so it is off unless asked for:
   * - queued messages sent before carry the DUP flag when streamed again on
   *   reconnect [MQTT-3.3.1-1] (moscajs/aedes#601);
   * - a message already written on this connection is not streamed again, and
   *   `shouldDeliverLive` lets live delivery skip one the stream sends
   *   (a message published while its subscriber reconnects is otherwise sent
   *   twice: live and from the queue).
   * @defaultValue false
   */
  trackDeliveries?: boolean
}

/** What the persistence is handed: its sublevels of the keyspace, and how it writes and closes. */
export interface SessionStores {
  retained: KeyValueStore
  subscriptions: KeyValueStore
  outgoing: KeyValueStore
  incoming: KeyValueStore
  wills: KeyValueStore
  /** Coalesces writes to the sublevels above (shared with the publish journal). */
  writes: WriteBatcher
  /**
   * Called last by `destroy()`, once its writes are stored. The broker
   * destroys its persistence after every other store is closed, so this
   * closes the database (open-persistence.ts).
   */
  close: () => Promise<void>
}

export interface LevelPersistenceEvents {
  'queue-overflow': [clientId: string, topic: string]
}

export class LevelPersistence extends EventEmitter<LevelPersistenceEvents> {
  readonly #stores: SessionStores
  readonly #writes: WriteBatcher
  readonly #maxQueued: number
  readonly #trackDeliveries: boolean
  readonly #trie = new QlobberSub(QLOBBER_OPTIONS)
  readonly #subs = new Map<string, Map<string, SubRecord>>()
  readonly #retained = new Map<string, StoredPacket>()
  readonly #queues = new Map<string, ClientQueue>()
  readonly #draining = new Set<ClientRef>()
  /** Connections whose queue stream has handed every queued message to Aedes (see `shouldDeliverLive`). */
  readonly #caughtUp = new WeakSet<ClientRef>()
  /** Queue streams waiting for Aedes to take (outgoingUpdate) what they yielded, by connection. */
  readonly #claimWaiters = new Map<ClientRef, () => void>()
  #seq = 0
  #broker: { id: string } | null = null
  #destroyed: Promise<void> | null = null
  #ackInterceptor: ((client: ClientRef, messageId: number) => boolean) | null = null

  /** Messages dropped because a client's queue was full, since start. */
  droppedMessages = 0
  /** Per client, messages dropped at the queue bound, across restarts (stored with each drop). */
  readonly #dropTotals = new Map<string, number>()

  constructor (stores: SessionStores, options: LevelPersistenceOptions = {}) {
    super()
    this.#stores = stores
    this.#writes = stores.writes
    this.#maxQueued = options.maxQueuedPerClient ?? 100_000
    this.#trackDeliveries = options.trackDeliveries ?? false
  }

  /** The broker this persistence serves (aedes-persistence's interface). */
  get broker (): { id: string } | null {
    return this.#broker
  }

  async setup (broker: { id: string }): Promise<void> {
    this.#broker = broker
    const { subscriptions, retained, outgoing } = this.#stores
    for await (const [key, value] of subscriptions.iterator()) {
      const sep = key.indexOf(':')
      const clientId = decodeURIComponent(key.slice(0, sep))
      const topic = key.slice(sep + 1)
      this.#rememberSub(clientId, topic, decodeValue<SubRecord>(value))
    }
    for await (const [, value] of retained.iterator()) {
      const packet = decodePacket(value)
      this.#retained.set(packet.topic, packet)
    }
    for await (const [key, value] of outgoing.iterator(prefixRange(DROPPED_PREFIX))) {
      this.#dropTotals.set(decodeURIComponent(key.slice(DROPPED_PREFIX.length)), decodeValue<{ dropped: number }>(value).dropped)
    }
    // Keys only: a queued message's value is read when it is streamed, not
    // on start (docs/durability.md, "Restart time"). Keys sort by client,
    // then seq, so each queue is filled in seq order.
    let encoded: string | null = null
    let queue: ClientQueue | null = null
    for await (const keys of keyChunks(outgoing, { gt: DROPPED_END })) {
      for (const key of keys) {
        // `{clientId}:{seq}`, seq 16 digits: no search for the ':'
        const sep = key.length - SEQ_DIGITS - 1
        if (queue === null || sep !== (encoded as string).length || !key.startsWith(encoded as string)) {
          encoded = key.slice(0, sep)
          queue = this.#queue(decodeURIComponent(encoded))
        }
        const seq = Number(key.slice(sep + 1))
        queue.bySeq.set(seq, STORED)
        if (seq > this.#seq) this.#seq = seq
      }
    }
  }

  // ---- retained -------------------------------------------------------------

  /** Retained messages stored now: the size of the in-memory copy, so reading it costs nothing (`fleetq_retained_messages`). */
  get retainedCount (): number {
    return this.#retained.size
  }

  async storeRetained (packet: StoredPacket): Promise<void> {
    const key = packet.topic
    const sublevel = this.#stores.retained
    // [MQTT-3.3.1-10] a retained message with an empty payload clears the topic
    if (packet.payload.length === 0) {
      this.#retained.delete(packet.topic)
      await this.#writes.write([{ type: 'del', sublevel, key }])
    } else {
      const stored = decodePacket(encodePacket(packet))
      this.#retained.set(packet.topic, stored)
      await this.#writes.write([{ type: 'put', sublevel, key, value: encodePacket(packet) }])
    }
  }

  createRetainedStreamCombi (patterns: string[]): Readable {
    const retained = [...this.#retained.values()]
    return Readable.from((function * () {
      for (const pattern of patterns) {
        const matcher = new QlobberTrue(QLOBBER_OPTIONS)
        matcher.add(pattern)
        // A filter starting with a wildcard does not match topics starting
        // with `$` [MQTT-4.7.2-1]: Aedes sends retained messages straight from
        // this stream, past the check its live deliveries get.
        const skipDollar = pattern.startsWith('#') || pattern.startsWith('+')
        for (const packet of retained) {
          if (skipDollar && packet.topic.startsWith('$')) continue
          if (matcher.test(packet.topic)) yield packet
        }
      }
    })())
  }

  createRetainedStream (pattern: string): Readable {
    return this.createRetainedStreamCombi([pattern])
  }

  // ---- subscriptions --------------------------------------------------------

  async addSubscriptions (client: ClientRef, subs: Subscription[]): Promise<void> {
    const ops: SublevelOp[] = []
    const sublevel = this.#stores.subscriptions
    for (const sub of subs) {
      const record: SubRecord = { qos: sub.qos, rh: sub.rh, rap: sub.rap, nl: sub.nl }
      if (sub.subscriptionIdentifier !== undefined) record.subscriptionIdentifier = sub.subscriptionIdentifier
      this.#rememberSub(client.id, sub.topic, record)
      ops.push({ type: 'put', sublevel, key: subKey(client.id, sub.topic), value: encodeValue(record) })
    }
    await this.#writes.write(ops)
  }

  async removeSubscriptions (client: ClientRef, topics: string[]): Promise<void> {
    const ops: SublevelOp[] = []
    const sublevel = this.#stores.subscriptions
    for (const topic of topics) {
      this.#forgetSub(client.id, topic)
      ops.push({ type: 'del', sublevel, key: subKey(client.id, topic) })
    }
    await this.#writes.write(ops)
  }

  async subscriptionsByClient (client: ClientRef): Promise<Subscription[]> {
    const stored = this.#subs.get(client.id)
    if (stored === undefined) return []
    return [...stored].map(([topic, record]) => ({ topic, ...record }))
  }

  /** The client ids with stored subscriptions (persistent sessions, connected or not), for `$SYS/broker/clients/total`. */
  storedSessionIds (): IterableIterator<string> {
    return this.#subs.keys()
  }

  async countOffline (): Promise<{ subsCount: number, clientsCount: number }> {
    return { subsCount: this.#trie.subscriptionsCount, clientsCount: this.#subs.size }
  }

  async subscriptionsByTopic (topic: string): Promise<TrieSub[]> {
    return this.#trie.match(topic) as TrieSub[]
  }

  async cleanSubscriptions (client: ClientRef): Promise<void> {
    // A new session starts its drop count afresh.
    if (this.#dropTotals.delete(client.id)) {
      await this.#writes.write([{ type: 'del', sublevel: this.#stores.outgoing, key: `${DROPPED_PREFIX}${enc(client.id)}` }])
    }
    const stored = this.#subs.get(client.id)
    if (stored === undefined) return
    await this.removeSubscriptions(client, [...stored.keys()])
  }

  #rememberSub (clientId: string, topic: string, record: SubRecord): void {
    let stored = this.#subs.get(clientId)
    if (stored === undefined) {
      stored = new Map()
      this.#subs.set(clientId, stored)
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

  #forgetSub (clientId: string, topic: string): void {
    const stored = this.#subs.get(clientId)
    const previous = stored?.get(topic)
    if (stored === undefined || previous === undefined) return
    if (previous.qos > 0) this.#trie.remove(topic, { clientId, topic })
    stored.delete(topic)
    if (stored.size === 0) this.#subs.delete(clientId)
  }

  // ---- outgoing queues ------------------------------------------------------

  async outgoingEnqueue (sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet)
  }

  async outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: StoredPacket): Promise<void> {
    if (subs.length === 0) return
    const seq = ++this.#seq
    const value = encodeQueuedPacket({ ...packet, messageId: undefined })
    const sublevel = this.#stores.outgoing
    const ops: SublevelOp[] = []
    const counter = counterKey(packet)
    for (const { clientId } of subs) {
      const queue = this.#queue(clientId)
      // Overlapping filters of one client list it twice; it gets one copy.
      if (queue.byCounter.has(counter)) continue
      if (this.#maxQueued > 0 && queue.bySeq.size >= this.#maxQueued) this.#dropOldest(clientId, queue, packet.topic, ops)
      this.#index(clientId, seq, packet)
      ops.push({ type: 'put', sublevel, key: outgoingKey(clientId, seq), value })
    }
    await this.#writes.write(ops)
  }

  /**
   * The queue limit (docs/durability.md, "Queue limit"): the oldest messages
   * go to make room, for a connected client as for an offline one. Their
   * deletes and the client's new drop total join the batch that stores the
   * new message, so after a crash every message is either still queued or
   * counted as dropped, never neither.
   */
  #dropOldest (clientId: string, queue: ClientQueue, topic: string, ops: SublevelOp[]): void {
    let total = this.#dropTotals.get(clientId) ?? 0
    for (const [seq, entry] of queue.bySeq) {
      if (queue.bySeq.size < this.#maxQueued) break
      queue.bySeq.delete(seq)
      if (entry === STORED) { // in no other index
        ops.push({ type: 'del', sublevel: this.#stores.outgoing, key: outgoingKey(clientId, seq) })
        total++
        this.droppedMessages++
        this.emit('queue-overflow', clientId, topic)
        continue
      }
      queue.byCounter.delete(counterKey(entry))
      if (entry.messageId !== undefined) queue.byMessageId.delete(entry.messageId)
      if (entry.brokerId !== null && entry.brokerId === this.#broker?.id) {
        queue.dropped.add(counterKey(entry))
        if (queue.dropped.size > DROPPED_REMEMBERED) queue.dropped.delete(queue.dropped.values().next().value as string)
      }
      ops.push({ type: 'del', sublevel: this.#stores.outgoing, key: outgoingKey(clientId, seq) })
      total++
      this.droppedMessages++
      this.emit('queue-overflow', clientId, topic)
    }
    this.#dropTotals.set(clientId, total)
    ops.push({ type: 'put', sublevel: this.#stores.outgoing, key: `${DROPPED_PREFIX}${enc(clientId)}`, value: encodeValue({ dropped: total }) })
  }

  /** Per client, the messages dropped at the queue bound since its session began, across restarts. */
  droppedTotals (): Map<string, number> {
    return new Map(this.#dropTotals)
  }

  async outgoingUpdate (client: ClientRef, packet: StoredPacket): Promise<void> {
    const queue = this.#queue(client.id)
    this.#wakeStream(client)
    if (packet.brokerId != null) {
      let seq = queue.byCounter.get(counterKey(packet))
      if (seq === undefined) {
        // Not queued (a clean session's copy, or dropped at the queue bound):
        // store it now so an unacknowledged message is resent on reconnect.
        seq = ++this.#seq
        this.#index(client.id, seq, { ...packet, messageId: undefined })
      }
      const entry = queue.bySeq.get(seq) as QueueEntry
      if (entry.messageId !== undefined) queue.byMessageId.delete(entry.messageId)
      entry.messageId = packet.messageId
      entry.sentTo = client
      if (packet.messageId !== undefined) queue.byMessageId.set(packet.messageId, seq)
      const written = this.#writes.write([{ type: 'put', sublevel: this.#stores.outgoing, key: outgoingKey(client.id, seq), value: encodeQueuedPacket(packet) }])
      // A queued QoS 1 message the stream hands out goes without waiting for
      // its message id to be stored: Aedes sends the queue one message at a
      // time, each after its outgoingUpdate, so waiting here made the drain
      // one store batch per message. The message stays queued either way;
      // a crash before the id lands only resends it under a new id, without
      // DUP, which QoS 1 allows [MQTT-4.3.2]. QoS 2 waits: its id must be
      // stored before the receiver can hold it [MQTT-4.3.3].
      // (docs/durability.md, "Draining a backlog")
      if (entry.streamedTo === client && packet.qos === 1) {
        written.catch(() => undefined) // a failed batch fails every write in it; the ones that wait report it
        return
      }
      await written
      return
    }
    // PUBREL of an outgoing QoS 2 exchange: it replaces the PUBLISH it follows.
    const seq = packet.messageId === undefined ? undefined : queue.byMessageId.get(packet.messageId)
    if (seq === undefined) throw new Error('no such packet')
    const entry = queue.bySeq.get(seq) as QueueEntry
    entry.sentTo = client
    packet.brokerId = entry.brokerId
    packet.brokerCounter = entry.brokerCounter
    await this.#writes.write([{ type: 'put', sublevel: this.#stores.outgoing, key: outgoingKey(client.id, seq), value: encodeQueuedPacket(packet) }])
  }

  /**
   * Lets the broker claim PUBACKs for messages it sent outside the client's
   * queue (shared-subscription groups): Aedes hands every PUBACK to this
   * method, and it is the one place that sees them all.
   */
  setAckInterceptor (interceptor: (client: ClientRef, messageId: number) => boolean): void {
    this.#ackInterceptor = interceptor
  }

  async outgoingClearMessageId (client: ClientRef, packet: { messageId?: number }): Promise<StoredPacket | undefined> {
    if (packet.messageId !== undefined && this.#ackInterceptor?.(client, packet.messageId) === true) return undefined
    const queue = this.#queues.get(client.id)
    const seq = packet.messageId === undefined ? undefined : queue?.byMessageId.get(packet.messageId)
    if (queue === undefined || seq === undefined) return undefined
    const entry = queue.bySeq.get(seq) as QueueEntry
    const key = outgoingKey(client.id, seq)
    const sublevel = this.#stores.outgoing
    const value = await this.#read(sublevel, key)
    if (!queue.bySeq.has(seq)) return undefined // dropped at the bound while this read waited
    queue.bySeq.delete(seq)
    queue.byMessageId.delete(packet.messageId as number)
    queue.byCounter.delete(counterKey(entry))
    // an empty queue goes, unless a stream is iterating it
    if (queue.bySeq.size === 0 && !this.#isStreamed(client.id)) this.#queues.delete(client.id)
    this.#wakeStream(client)
    await this.#writes.write([{ type: 'del', sublevel, key }])
    return value === undefined ? undefined : decodeQueuedPacket(value)
  }

  /**
   * The client's queue, oldest first: Aedes streams it to a connection right
   * after CONNACK (connect.js `emptyQueue`), calling `outgoingUpdate` for each
   * packet just before writing it.
   *
   * With `trackDeliveries`, this is also what keeps queued messages ahead of
   * newer ones on reconnect [MQTT-4.6.0-6] (moscajs/aedes#649): until the
   * stream has handed Aedes every queued message, live deliveries of queued
   * messages to this connection are held back (`shouldDeliverLive`) and the
   * stream sends them instead, in queue order. Two things make that hold:
   * - iterating the live Map also visits messages queued while this runs, and
   *   the stream ends only once none is left that it has not sent;
   * - it ends only once Aedes has taken (`outgoingUpdate`) every packet it
   *   yielded. `Readable.from` reads ahead of Aedes, so the generator finishing
   *   does not mean its last packets went out; a live delivery let through
   *   then would be written before them (writes follow `outgoingUpdate` order,
   *   as its store writes land in the order they are issued).
   */
  outgoingStream (client: ClientRef): Readable {
    const queue = this.#queue(client.id)
    const readBatch = this.#readBatch.bind(this, client.id)
    const track = this.#trackDeliveries
    const draining = this.#draining
    const caughtUp = this.#caughtUp
    const claimed = this.#claimed.bind(this)
    const index = indexEntry
    if (track) draining.add(client)
    return Readable.from((async function * () {
      // Entries only join a queue above every seq in it, so the walk's place
      // tells what was yielded or passed over.
      const next = queueWalker(queue, client, track)
      const yielded = new Set<number>()
      try {
        let batch = next()
        for (;;) {
          // One range read per STREAM_BATCH messages, not one read each
          // (docs/durability.md, "Draining a backlog").
          for (; batch.length > 0; batch = next()) {
            const values = await readBatch(batch)
            for (const seq of batch) {
              const value = values.get(seq)
              let entry = queue.bySeq.get(seq)
              if (value === undefined || entry === undefined) continue // acknowledged or dropped meanwhile
              const packet = decodeQueuedPacket(value)
              if (entry === STORED) entry = index(queue, seq, packet)
              // A packet that already has a message id was sent before: this is a
              // re-delivery and carries the DUP flag [MQTT-3.3.1-1] (moscajs/aedes#601).
              if (track && packet.cmd === 'publish' && packet.messageId !== undefined) packet.dup = true
              entry.streamedTo = client
              yielded.add(seq)
              yield packet
            }
          }
          if (!track) return
          // Wait for Aedes to take what was yielded, then look again: messages
          // held back from live delivery meanwhile are in the queue, unsent.
          if (!await claimed(client, queue, yielded)) return // connection gone
          batch = next()
          if (batch.length === 0) {
            // Synchronously with the check above: from here on live delivery
            // is in order, as everything queued before it was taken already.
            caughtUp.add(client)
            return
          }
        }
      } finally {
        draining.delete(client)
      }
    })())
  }

  /**
   * The stored values of `seqs` (ascending, all of one client), from one
   * range read, with writes not yet in the store taking precedence.
   */
  async #readBatch (clientId: string, seqs: number[]): Promise<Map<number, Buffer>> {
    const sublevel = this.#stores.outgoing
    // Writes not yet stored are taken before the range read starts: one that
    // lands while it runs is then seen either way.
    const unwritten = new Map<number, Buffer | null>()
    for (const seq of seqs) {
      const value = this.#writes.pendingValue(sublevel, outgoingKey(clientId, seq))
      if (value !== undefined) unwritten.set(seq, value)
    }
    const values = new Map<number, Buffer>()
    const range = { gte: outgoingKey(clientId, seqs[0] as number), lte: outgoingKey(clientId, seqs[seqs.length - 1] as number) }
    try {
      for await (const [key, value] of sublevel.iterator(range)) {
        values.set(Number(key.slice(key.lastIndexOf(':') + 1)), value)
      }
    } catch (err) {
      // The store closed under a stream of a persistence being destroyed: it ends (`#claimed`).
      if (this.#destroyed !== null) return new Map()
      throw err
    }
    for (const [seq, value] of unwritten) {
      if (value === null) values.delete(seq)
      else values.set(seq, value)
    }
    return values
  }

  /**
   * Resolves once every entry in `yielded` was taken by Aedes on this
   * connection (`outgoingUpdate`) or left the queue (true), or the connection
   * closed first (false).
   */
  async #claimed (client: ClientRef, queue: ClientQueue, yielded: Set<number>): Promise<boolean> {
    for (;;) {
      for (const seq of yielded) {
        const entry = queue.bySeq.get(seq)
        if (entry === undefined || entry.sentTo === client) yielded.delete(seq)
      }
      if (yielded.size === 0) return true
      // A stream of a persistence being destroyed ends too: nothing will take it.
      if ((client as { closed?: boolean }).closed === true || this.#destroyed !== null) return false
      // Woken by outgoingUpdate / outgoingClearMessageId for this connection;
      // the timer only notices a connection that closed meanwhile.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(wake, 50)
        const waiters = this.#claimWaiters
        function wake (): void {
          clearTimeout(timer)
          if (waiters.get(client) === wake) waiters.delete(client)
          resolve()
        }
        waiters.set(client, wake)
      })
    }
  }

  #wakeStream (client: ClientRef): void {
    this.#claimWaiters.get(client)?.()
  }

  /**
   * Whether a live delivery of this packet should go out now (see
   * `trackDeliveries`). No when its queued copy was already written to this
   * very connection, and no while this connection has not been handed its
   * queue yet (`outgoingStream`): the stream will send it, in order. That
   * includes the time before the stream starts, as Aedes restores a
   * persistent session's subscriptions (connect.js `restoreSubs`) before it
   * sends CONNACK and streams the queue (`emptyQueue`).
   * `brokerCounter` is the creation number.
   */
  shouldDeliverLive (client: ClientRef, brokerId: string | null | undefined, brokerCounter: number): boolean {
    const queue = this.#queues.get(client.id)
    const counter = counterKey({ brokerId, brokerCounter })
    const seq = queue?.byCounter.get(counter)
    if (queue === undefined) return true // not queued for this client
    if (seq === undefined) {
      // Dropped at the queue bound before its live delivery: sent now, it
      // would overtake the backlog the stream is still sending [MQTT-4.6.0-6].
      if (queue.dropped.delete(counter)) return this.#caughtUp.has(client) || !this.#trackDeliveries
      return true // not queued for this client
    }
    if (queue.bySeq.get(seq)?.sentTo === client) return false
    return !this.#trackDeliveries || this.#caughtUp.has(client)
  }

  /** Messages queued per client (persistent sessions), for introspection. */
  queueSizes (): Map<string, number> {
    const sizes = new Map<string, number>()
    for (const [clientId, queue] of this.#queues) sizes.set(clientId, queue.bySeq.size)
    return sizes
  }

  #isStreamed (clientId: string): boolean {
    for (const c of this.#draining) if (c.id === clientId) return true
    return false
  }

  #queue (clientId: string): ClientQueue {
    let queue = this.#queues.get(clientId)
    if (queue === undefined) {
      queue = { bySeq: new Map(), byCounter: new Map(), byMessageId: new Map(), dropped: new Set() }
      this.#queues.set(clientId, queue)
    }
    return queue
  }

  #index (clientId: string, seq: number, packet: Partial<StoredPacket>): void {
    indexEntry(this.#queue(clientId), seq, packet)
  }


  // ---- incoming QoS 2 -------------------------------------------------------

  async incomingStorePacket (client: ClientRef, packet: StoredPacket): Promise<void> {
    await this.#writes.write([{ type: 'put', sublevel: this.#stores.incoming, key: incomingKey(client.id, packet.messageId), value: encodeQueuedPacket(packet) }])
  }

  async incomingGetPacket (client: ClientRef, packet: { messageId?: number }): Promise<StoredPacket> {
    const value = await this.#read(this.#stores.incoming, incomingKey(client.id, packet.messageId))
    if (value === undefined) throw new Error('no such packet')
    return decodePacket(value)
  }

  async incomingDelPacket (client: ClientRef, packet: { messageId?: number }): Promise<void> {
    await this.#writes.write([{ type: 'del', sublevel: this.#stores.incoming, key: incomingKey(client.id, packet.messageId) }])
  }

  async cleanIncoming (client: ClientRef): Promise<void> {
    const ops: SublevelOp[] = []
    const sublevel = this.#stores.incoming
    await this.#writes.idle()
    for await (const key of sublevel.keys(prefixRange(`${enc(client.id)}:`))) {
      ops.push({ type: 'del', sublevel, key })
    }
    await this.#writes.write(ops)
  }

  // ---- wills ----------------------------------------------------------------

  async putWill (client: ClientRef, packet: StoredPacket): Promise<void> {
    packet.brokerId = this.#broker?.id ?? null
    packet.clientId = client.id
    await this.#writes.write([{ type: 'put', sublevel: this.#stores.wills, key: enc(client.id), value: encodePacket(packet) }])
  }

  async getWill (client: ClientRef): Promise<StoredPacket | undefined> {
    const value = await this.#read(this.#stores.wills, enc(client.id))
    return value === undefined ? undefined : decodePacket(value)
  }

  async delWill (client: ClientRef): Promise<StoredPacket | undefined> {
    const will = await this.getWill(client)
    if (will === undefined) return undefined
    await this.#writes.write([{ type: 'del', sublevel: this.#stores.wills, key: enc(client.id) }])
    return will
  }

  streamWill (brokers: Record<string, unknown> = {}): Readable {
    const wills = this.#stores.wills
    const writes = this.#writes
    return Readable.from((async function * () {
      await writes.idle()
      for await (const [, value] of wills.iterator()) {
        const will = decodePacket(value)
        if (will.brokerId == null || brokers[will.brokerId] === undefined) yield will
      }
    })())
  }

  getClientList (topic: string): Readable {
    const clients: string[] = []
    for (const [clientId, subs] of this.#subs) {
      if (subs.has(topic)) clients.push(clientId)
    }
    return Readable.from(clients)
  }

  // ---- lifecycle ------------------------------------------------------------

  /** Waits for every write issued so far to reach the store. */
  async flush (): Promise<void> {
    await this.#writes.idle()
  }

  async destroy (): Promise<void> {
    this.#destroyed ??= (async () => {
      try {
        await this.#writes.idle()
      } finally {
        await this.#stores.close()
      }
    })()
    return this.#destroyed
  }

  async #read (sublevel: KeyValueStore, key: string): Promise<Buffer | undefined> {
    const pending = this.#writes.pendingValue(sublevel, key)
    if (pending !== undefined) return pending === null ? undefined : pending
    return sublevel.get(key)
  }
}

/** Messages a queue stream reads and hands to Aedes per store read. */
const STREAM_BATCH = 256

/**
 * Walks a client's queue for its stream, in seq order, yielding up to
 * `limit` seqs above the last one taken of entries still to send on `client`
 * (with `track`, those not already written to this very connection). It keeps
 * its place in the Map between calls (a Map iterator sees entries added after
 * it started, and skips deleted ones), so a backlog of n costs O(n), not a
 * scan from the front per batch; only once the walk reached the end does the
 * next call start again from the front.
 */
function queueWalker (queue: ClientQueue, client: ClientRef, track: boolean): (limit?: number) => number[] {
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

function counterKey (packet: { brokerId?: string | null, brokerCounter?: number }): string {
  return `${packet.brokerId ?? ''}:${packet.brokerCounter ?? 0}`
}

function subKey (clientId: string, topic: string): string {
  return `${enc(clientId)}:${topic}`
}

function outgoingKey (clientId: string, seq: number): string {
  return `${enc(clientId)}:${pad(seq)}`
}

function incomingKey (clientId: string, messageId: number | undefined): string {
  return `${enc(clientId)}:${pad(messageId ?? 0)}`
}
