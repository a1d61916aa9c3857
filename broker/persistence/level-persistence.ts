import { EventEmitter } from 'node:events'
import { Readable } from 'node:stream'
import { decodeQueuedPacket, decodeValue, encodeQueuedPacket, encodeValue, type StoredPacket } from './packet-codec.js'
import { counterKey, DROPPED_PREFIX, enc, outgoingKey, readValue, type ClientRef } from './persistence-keys.js'
import { indexEntry, newClientQueue, queueWalker, rememberDropped, STORED, type ClientQueue, type QueueEntry } from './queue-index.js'
import { RetainedMessages } from './retained-messages.js'
import { SessionRecords } from './session-records.js'
import { StoredQueues } from './stored-queues.js'
import { drainQueue, type QueueWriter } from './queue-drain.js'
import { AckWaiters } from './ack-waiters.js'
import { readQueueBatch } from './queue-batch-read.js'
import { RecentAcks } from './recent-acks.js'

export type { QueueWriter } from './queue-drain.js'
import { SubscriptionIndex, type Subscription, type TrieSub } from './subscription-index.js'
import { prefixRange, type KeyValueStore, type SublevelOp } from './store.js'
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
 * By concern: this file holds the per-client queues (outgoing); retained
 * messages (retained-messages.ts), subscriptions (subscription-index.ts),
 * incoming QoS 2 and wills (session-records.ts), the queue index
 * (queue-index.ts), a queue's batched reads (queue-batch-read.ts), the wait
 * for a connection's next PUBACK (ack-waiters.ts), the memory of queued
 * messages acknowledged lately (recent-acks.ts) and the key formats
 * (persistence-keys.ts) have theirs.
 */

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

/** What an enqueue with no subscriber answers: one settled promise for all (Aedes only awaits it). */
const RESOLVED = Promise.resolve()

export class LevelPersistence extends EventEmitter<LevelPersistenceEvents> {
  readonly #stores: SessionStores
  readonly #writes: WriteBatcher
  readonly #maxQueued: number
  readonly #trackDeliveries: boolean
  readonly #subs: SubscriptionIndex
  readonly #retained: RetainedMessages
  readonly #records: SessionRecords
  readonly #queues = new Map<string, ClientQueue>()
  readonly #draining = new Set<ClientRef>()
  /** Queued messages acknowledged lately (shouldDeliverLive). */
  readonly #recentAcks = new RecentAcks()
  /** Connections whose queue stream has handed every queued message to Aedes (see `shouldDeliverLive`). */
  readonly #caughtUp = new WeakSet<ClientRef>()
  /** Queue streams and drains waiting for Aedes to take (outgoingUpdate) what they yielded, or for a PUBACK, by connection. */
  readonly #ackWaiters = new AckWaiters()
  #seq = 0
  /** Queues left by a previous broker, loaded after start. */
  readonly #stored: StoredQueues
  #warming: Promise<void> = Promise.resolve()
  /** Enqueues waiting for a queue to load, and every enqueue after them: they keep their order. */
  #enqueueChain: Promise<void> | null = null
  #broker: { id: string } | null = null
  #destroyed: Promise<void> | null = null
  #ackInterceptor: ((client: ClientRef, messageId: number) => boolean) | null = null
  #enqueueListener: ((packet: StoredPacket) => void) | null = null
  #queueWriter: QueueWriter | null = null

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
    this.#subs = new SubscriptionIndex(stores.subscriptions, stores.writes)
    this.#retained = new RetainedMessages(stores.retained, stores.writes)
    this.#records = new SessionRecords(stores.incoming, stores.wills, stores.writes)
    this.#stored = new StoredQueues(stores.outgoing, (clientId) => this.#queue(clientId))
  }

  /** The broker this persistence serves (aedes-persistence's interface). */
  get broker (): { id: string } | null {
    return this.#broker
  }

  async setup (broker: { id: string }): Promise<void> {
    this.#broker = broker
    const { outgoing } = this.#stores
    await this.#subs.load()
    await this.#retained.load()
    // The keys of stored wills and QoS 2 records, so a CONNECT of a client with none reads nothing (session-records.ts).
    await this.#records.load()
    for await (const [key, value] of outgoing.iterator(prefixRange(DROPPED_PREFIX))) {
      this.#dropTotals.set(decodeURIComponent(key.slice(DROPPED_PREFIX.length)), decodeValue<{ dropped: number }>(value).dropped)
    }
    // O(clients), not O(messages) (docs/durability.md, "Restart time").
    this.#seq = Math.max(this.#seq, await this.#stored.discover())
    this.#warming = this.#stored.warmUp()
  }

  /** Resolves once every queue stored at start is loaded (tests, benchmarks). */
  async loaded (): Promise<void> {
    await this.#warming
  }

  // ---- retained -------------------------------------------------------------

  /** Retained messages stored now: the size of the in-memory copy, so reading it costs nothing (`fleetq_retained_messages`). */
  get retainedCount (): number {
    return this.#retained.size
  }

  /**
   * Not waiting for the write: the message is visible to new subscribers
   * from now on, and Aedes routes the publish only once this resolves, so a
   * client subscribing while the write is in flight got it twice, as
   * retained and live (seen with mosquitto_sub in test/interop-mosquitto.test.ts).
   * Durable all the same: a client's retained QoS 1 publish is journaled
   * (docs/durability.md, "What is journaled"), a QoS 2 one is kept until
   * PUBREL, and the shared write batcher lands batches in issue order, so
   * neither is deleted before this write lands.
   */
  storeRetained (packet: StoredPacket): Promise<void> {
    this.#retained.store(packet).catch(() => undefined) // a failed batch fails every write in it; the ones that wait report it
    return Promise.resolve()
  }

  createRetainedStreamCombi (patterns: string[]): Readable {
    return this.#retained.stream(patterns)
  }

  createRetainedStream (pattern: string): Readable {
    return this.#retained.stream([pattern])
  }

  // ---- subscriptions --------------------------------------------------------

  async addSubscriptions (client: ClientRef, subs: Subscription[]): Promise<void> {
    await this.#subs.add(client.id, subs)
  }

  async removeSubscriptions (client: ClientRef, topics: string[]): Promise<void> {
    await this.#subs.remove(client.id, topics)
  }

  async subscriptionsByClient (client: ClientRef): Promise<Subscription[]> {
    const stored = this.#subs.of(client.id)
    if (stored === undefined) return []
    return [...stored].map(([topic, record]) => ({ topic, ...record }))
  }

  /** The client ids with stored subscriptions (persistent sessions, connected or not), for `$SYS/broker/clients/total`. */
  storedSessionIds (): IterableIterator<string> {
    return this.#subs.clientIds()
  }

  async countOffline (): Promise<{ subsCount: number, clientsCount: number }> {
    return { subsCount: this.#subs.queueingCount, clientsCount: this.#subs.clientCount }
  }

  /**
   * Synchronously: whether a message on `topic` would be queued for some
   * persistent session, connected or away (its QoS > 0 subscriptions; Aedes
   * stores no clean session's). The publish journal is skipped for a QoS 1
   * publish with no such subscriber, no group and no retain flag
   * (docs/durability.md, "What is journaled").
   */
  hasDurableSubscriber (topic: string): boolean {
    return this.#subs.matchesAny(topic)
  }

  subscriptionsByTopic (topic: string): Promise<TrieSub[]> {
    return Promise.resolve(this.#subs.match(topic))
  }

  async cleanSubscriptions (client: ClientRef): Promise<void> {
    // A new session starts its drop count afresh.
    if (this.#dropTotals.delete(client.id)) {
      await this.#writes.write([{ type: 'del', sublevel: this.#stores.outgoing, key: `${DROPPED_PREFIX}${enc(client.id)}` }])
    }
    const stored = this.#subs.of(client.id)
    if (stored === undefined) return
    await this.#subs.remove(client.id, [...stored.keys()])
  }

  getClientList (topic: string): Readable {
    const clients: string[] = []
    for (const [clientId, subs] of this.#subs.entries()) {
      if (subs.has(topic)) clients.push(clientId)
    }
    return Readable.from(clients)
  }

  // ---- outgoing queues ------------------------------------------------------

  async outgoingEnqueue (sub: { clientId: string }, packet: StoredPacket): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet)
  }

  /**
   * `listener` is called synchronously just before the batch that queues a
   * QoS > 0 message (Aedes calls `outgoingEnqueueCombi` for each, also with no
   * subscriber), so writes it issues through the shared batcher land in that
   * same batch (the adapter settles the publish journal there,
   * mqtt/internals/journal-settlement.ts).
   */
  onEnqueue (listener: (packet: StoredPacket) => void): void {
    this.#enqueueListener = listener
  }

  outgoingEnqueueCombi (subs: Array<{ clientId: string }>, packet: StoredPacket): Promise<void> {
    // No persistent session matched (every publish when clients are clean):
    // the listener and nothing else, without an async function's promises.
    if (subs.length === 0 && this.#enqueueChain === null) return this.#enqueue(subs, packet)
    return this.#enqueueCombi(subs, packet)
  }

  async #enqueueCombi (subs: Array<{ clientId: string }>, packet: StoredPacket): Promise<void> {
    let loads: Array<Promise<void>> | null = null
    for (const { clientId } of subs) {
      const loading = this.#stored.load(clientId)
      if (loading !== null) (loads ??= []).push(loading)
    }
    if (loads === null && this.#enqueueChain === null) {
      await this.#enqueue(subs, packet)
      return
    }
    // A queue stored at start is loaded first (the bound counts it, the new
    // message goes behind it); enqueues issued meanwhile wait their turn, so
    // seqs still follow the order Aedes enqueued in.
    const previous = this.#enqueueChain ?? Promise.resolve()
    const turn = previous.then(async () => { await Promise.all(loads ?? []) }).then(() => ({ written: this.#enqueue(subs, packet) }))
    const chain = turn.then(() => undefined, () => undefined)
    this.#enqueueChain = chain
    try {
      const { written } = await turn
      await written
    } finally {
      if (this.#enqueueChain === chain) this.#enqueueChain = null
    }
  }

  /** Indexes `packet` for `subs` and issues its batch, synchronously; resolves once stored. */
  #enqueue (subs: Array<{ clientId: string }>, packet: StoredPacket): Promise<void> {
    if (subs.length === 0) {
      this.#enqueueListener?.(packet)
      return RESOLVED
    }
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
    this.#enqueueListener?.(packet)
    return this.#writes.write(ops)
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
      // Also one of an earlier broker, streamed (so indexed): Aedes may be
      // about to write it (`outgoingUpdate` must not queue it again).
      rememberDropped(queue, entry)
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
    this.#ackWaiters.wake(client)
    if (packet.brokerId != null) {
      let seq = queue.byCounter.get(counterKey(packet))
      if (seq === undefined) {
        // Dropped at the queue bound while on its way out (streamed, or
        // delivered live): it goes out this once, counted as dropped. Queued
        // again it would sit behind newer messages and, if this connection
        // dies before it arrives, be resent after them (docs/durability.md,
        // "Queue limit") [MQTT-4.6.0-6].
        if (queue.dropped.has(counterKey(packet))) return
        // Not queued (a clean session's copy, a retained message): store it
        // now so an unacknowledged message is resent on reconnect.
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
    if (entry.brokerId !== null) this.#recentAcks.remember(client.id, counterKey(entry))
    // an empty queue goes, unless a stream is iterating it
    if (queue.bySeq.size === 0 && !this.#isStreamed(client.id)) this.#queues.delete(client.id)
    this.#ackWaiters.wake(client)
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
    const writer = this.#queueWriter
    if (writer !== null && this.#trackDeliveries) {
      // Nothing is handed to Aedes: the stream ends once the drain is done.
      const done = new Readable({ objectMode: true, read () {} })
      this.#drain(client, writer).then(() => done.push(null), (err: unknown) => done.destroy(err as Error))
      return done
    }
    const queue = this.#queue(client.id)
    const readBatch = this.#readBatch.bind(this, client.id)
    const track = this.#trackDeliveries
    const draining = this.#draining
    const caughtUp = this.#caughtUp
    const claimed = this.#claimed.bind(this)
    const index = indexEntry
    if (track) draining.add(client)
    const load = this.#stored.load(client.id)
    return Readable.from((async function * () {
      await load // before the walk: stored entries go in front
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
   * Lets the broker write a reconnecting client's queue itself (`#drain`)
   * instead of handing it to Aedes one message per event-loop turn.
   */
  setQueueWriter (writer: QueueWriter): void {
    this.#queueWriter = writer
  }

  /** The drain writer (queue-drain.ts) on this client's queue, loaded first. */
  async #drain (client: ClientRef, writer: QueueWriter): Promise<void> {
    this.#draining.add(client)
    try {
      await this.#stored.load(client.id)
      const queue = this.#queue(client.id)
      await drainQueue({
        queue,
        readBatch: async (seqs) => await this.#readBatch(client.id, seqs),
        update: async (packet) => { await this.outgoingUpdate(client, packet) },
        clear: async (packet) => await this.outgoingClearMessageId(client, packet),
        waitForAck: async () => await this.#waitForAck(client),
        caughtUp: () => { this.#caughtUp.add(client) }
      }, client, writer)
    } finally {
      this.#draining.delete(client)
      // Every CONNECT drains, a clean session's empty queue too: an empty
      // queue left behind cost about 0.8 KB per idle connection
      // (docs/benchmarks.md, "Idle connections"). No queue answers as an
      // empty one does, and #queue() makes it again when needed.
      const queue = this.#queues.get(client.id)
      if (queue !== undefined && queue.bySeq.size === 0 && queue.dropped.size === 0 && !this.#isStreamed(client.id)) this.#queues.delete(client.id)
    }
  }

  /** A PUBACK or update for `client`: true; false at once if the connection or the store closed (ack-waiters.ts). */
  async #waitForAck (client: ClientRef): Promise<boolean> {
    return await this.#ackWaiters.wait(client, (client as { closed?: boolean }).closed === true || this.#destroyed !== null)
  }

  /** The stored values of `seqs` of `clientId`'s queue, in one range read (queue-batch-read.ts). */
  async #readBatch (clientId: string, seqs: number[]): Promise<Map<number, Buffer>> {
    // The store closed under a stream of a persistence being destroyed: it ends (`#claimed`).
    return await readQueueBatch(this.#stores.outgoing, this.#writes, clientId, seqs, () => this.#destroyed !== null)
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
      // Woken by outgoingUpdate / outgoingClearMessageId for this connection;
      // a closed connection, or a persistence being destroyed, ends it: nothing will take it.
      if (!await this.#waitForAck(client)) return false
    }
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
    if (queue === undefined) return !this.#recentAcks.has(client.id, counter) // not queued for this client now
    if (seq === undefined) {
      // Dropped at the queue bound before its live delivery: it is counted
      // as dropped and not sent, not even once the backlog is out. Newer
      // messages may have gone already (the drain sends a queue that churns
      // at the bound, and ends while earlier live deliveries are still on
      // their way): sent now, it would overtake them [MQTT-4.6.0-6]
      // (test/backlog-order.test.ts saw "200 after 249").
      // Kept in `dropped` (bounded): outgoingUpdate looks for it too.
      if (queue.dropped.has(counter)) return !this.#trackDeliveries
      return !this.#recentAcks.has(client.id, counter) // not queued for this client now
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
      queue = newClientQueue()
      this.#queues.set(clientId, queue)
    }
    return queue
  }

  #index (clientId: string, seq: number, packet: Partial<StoredPacket>): void {
    indexEntry(this.#queue(clientId), seq, packet)
  }


  // ---- incoming QoS 2 and wills ----------------------------------------------

  async incomingStorePacket (client: ClientRef, packet: StoredPacket): Promise<void> {
    await this.#records.storeIncoming(client, packet)
  }

  async incomingGetPacket (client: ClientRef, packet: { messageId?: number }): Promise<StoredPacket> {
    return await this.#records.getIncoming(client, packet)
  }

  async incomingDelPacket (client: ClientRef, packet: { messageId?: number }): Promise<void> {
    await this.#records.delIncoming(client, packet)
  }

  async cleanIncoming (client: ClientRef): Promise<void> {
    await this.#records.cleanIncoming(client)
  }

  async putWill (client: ClientRef, packet: StoredPacket): Promise<void> {
    await this.#records.putWill(client, packet, this.#broker?.id ?? null)
  }

  async getWill (client: ClientRef): Promise<StoredPacket | undefined> {
    return await this.#records.getWill(client)
  }

  async delWill (client: ClientRef): Promise<StoredPacket | undefined> {
    return await this.#records.delWill(client)
  }

  streamWill (brokers: Record<string, unknown> = {}): Readable {
    return this.#records.streamWill(brokers)
  }

  // ---- lifecycle ------------------------------------------------------------

  /** Waits for every write issued so far to reach the store. */
  async flush (): Promise<void> {
    await this.#writes.idle()
  }

  async destroy (): Promise<void> {
    this.#destroyed ??= (async () => {
      try {
        this.#stored.stop()
        await this.#warming
        await this.#writes.idle()
      } finally {
        await this.#stores.close()
      }
    })()
    return this.#destroyed
  }

  async #read (sublevel: KeyValueStore, key: string): Promise<Buffer | undefined> {
    return await readValue(this.#writes, sublevel, key)
  }
}
