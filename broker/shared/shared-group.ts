import type { Logger } from 'pino'
import { pickMember, type Candidate } from './dispatch-strategy.js'
import type { GroupOptions } from './group-options.js'
import type { GroupDefinition, GroupMessage, GroupStore } from './group-store.js'
import { annotateDeliveries } from './delivery-count.js'
import { ownBytes } from './own-bytes.js'
import type { Connection } from '../types/mqtt.js'

interface Member {
  readonly client: Connection
  readonly clientId: string
  qos: 0 | 1
  prefetch: number
  /** Packet identifier → seq of every message sent and not yet PUBACKed, stale leases included. */
  readonly outstanding: Map<number, number>
}

interface Inflight {
  message: GroupMessage
  member: Member
  messageId: number
  /** When the lease runs out (`Date.now()` ms). */
  deadline: number
}

export interface GroupCounters {
  /** QoS 1 messages stored in the queue. */
  enqueued: number
  /** Sends to a member, redeliveries included. */
  delivered: number
  acked: number
  /** Messages taken back from a member (disconnect, unsubscribe, lease expiry). */
  redelivered: number
  /** PUBACKs for a message already taken back (ignored). */
  lateAcks: number
  /** Dropped at `maxLength` (see `overflow`). */
  overflowed: number
  /** Dropped after `messageTtlMs` in the queue. */
  expired: number
  /** QoS 0 messages with no online member, or sent while the group was paused (QoS 0 is not stored). */
  qos0Dropped: number
  /** Waiting messages dropped by an operator's purge (the admin API, docs/shared-subscriptions.md). */
  purged: number
}

export interface MemberStats { clientId: string, inflight: number, prefetch: number }

/** A waiting message as the admin API shows it (dead letters are the dead-letter group's). */
export interface WaitingMessage {
  seq: number
  topic: string
  payload: Buffer
  enqueuedAt: number
  deliveries: number
}

export interface GroupStats {
  key: string
  group: string
  filter: string
  strategy: GroupOptions['strategy']
  /** Messages waiting for a member. */
  depth: number
  /** Messages sent and not yet acknowledged. */
  inflight: number
  members: MemberStats[]
  counters: GroupCounters
  createdAt: number
  idleSince: number | null
  /** Paused by an operator: messages are stored, none is sent (docs/shared-subscriptions.md). */
  paused: boolean
  /** Epoch ms the oldest waiting message entered the queue, null when none waits. */
  oldestEnqueuedAt: number | null
}

/** What a slot of `#pending` before its head holds: nothing (#releaseHead). */
const RELEASED = undefined as unknown as GroupMessage

/** What an enqueue that stores nothing answers: one settled promise for all. */
const RESOLVED = Promise.resolve()

/** How many waiting messages one dispatch pass looks at when some must wait (hash). */
const SCAN_LIMIT = 1000

/**
 * One `$share/{group}/{filter}` group: a durable FIFO queue with competing
 * members. A QoS 1 message stays stored until the member it was sent to
 * PUBACKs it; if that member leaves or its lease runs out, the message goes
 * back to the head of the queue and the next send carries DUP.
 */
export class SharedGroup {
  readonly definition: GroupDefinition
  readonly options: GroupOptions
  readonly counters: GroupCounters = {
    enqueued: 0, delivered: 0, acked: 0, redelivered: 0, lateAcks: 0, overflowed: 0, expired: 0, qos0Dropped: 0, purged: 0
  }

  idleSince: number | null
  readonly #store: GroupStore
  readonly #logger: Logger
  /** The batch promise of the last removal (see #remove). */
  #lastRemoval: Promise<void> | null = null
  readonly #removalFailed = (err: unknown): void => {
    this.#logger.error({ err, group: this.definition.key }, 'could not remove acknowledged messages')
  }
  #pending: GroupMessage[] = []
  #head = 0
  /** Taken back from a member, in seq order: sent before anything pending. */
  #returned: GroupMessage[] = []
  readonly #inflight = new Map<number, Inflight>()
  /** The one lease timer (`#armLeases`), or null when none is armed. */
  #leaseTimer: NodeJS.Timeout | null = null
  readonly #members: Member[] = []
  #turn = 0
  #dispatching = false
  #closed = false
  #paused: boolean

  constructor (definition: GroupDefinition, options: GroupOptions, store: GroupStore, logger: Logger) {
    this.definition = definition
    this.options = options
    this.#store = store
    this.#logger = logger
    this.idleSince = Date.now()
    this.#paused = definition.paused === true
  }

  get paused (): boolean {
    return this.#paused
  }

  /**
   * Stops sending: published messages are still stored (QoS 1), nothing new
   * goes to a member; messages already in flight are acknowledged as usual.
   * The caller stores the state (SharedSubscriptions.pause).
   */
  pause (): void {
    this.#paused = true
  }

  resume (): void {
    this.#paused = false
    this.dispatch()
  }

  /**
   * Drops every waiting message, from memory and the store (not those in
   * flight: their members may still acknowledge them). Resolves with how
   * many, once the removal is durable.
   */
  async purge (): Promise<number> {
    const seqs = this.waiting().map((m) => m.seq)
    this.#pending = []
    this.#head = 0
    this.#returned = []
    this.counters.purged += seqs.length
    if (seqs.length > 0) await this.#store.remove(this.definition.key, seqs)
    return seqs.length
  }

  /** The waiting messages, oldest (lowest seq) first: a copy, for the admin API to read. */
  waiting (): WaitingMessage[] {
    const messages = [...this.#returned, ...this.#pending.slice(this.#head)].sort((a, b) => a.seq - b.seq)
    return messages.map(({ seq, topic, payload, enqueuedAt, deliveries }) => ({ seq, topic, payload, enqueuedAt, deliveries }))
  }

  /** Drops one waiting message (not one in flight); false if none waits with that seq. Resolves once durable. */
  async removeWaiting (seq: number): Promise<boolean> {
    const returned = this.#returned.findIndex((m) => m.seq === seq)
    if (returned >= 0) {
      this.#returned.splice(returned, 1)
    } else {
      const pending = this.#pending.findIndex((m, i) => i >= this.#head && m.seq === seq)
      if (pending < 0) return false
      this.#pending.splice(pending, 1)
    }
    await this.#store.remove(this.definition.key, [seq])
    return true
  }

  /** Messages found in the store at start: in flight at a crash or waiting. */
  restore (messages: GroupMessage[]): void {
    for (const message of messages) {
      if (message.deliveries > 0) this.#returned.push(message)
      else this.#pending.push(message)
    }
  }

  get depth (): number {
    return this.#pending.length - this.#head + this.#returned.length
  }

  get memberCount (): number {
    return this.#members.length
  }

  /** The QoS a member with this client id joined at, or undefined if it is not one (the admin API's subscription list). */
  memberQos (clientId: string): 0 | 1 | undefined {
    return this.#members.find((m) => m.clientId === clientId)?.qos
  }

  hasMember (client: Connection): boolean {
    return this.#memberOf(client) !== undefined
  }

  join (client: Connection, qos: 0 | 1, prefetch: number | undefined): void {
    const existing = this.#memberOf(client)
    if (existing !== undefined) {
      existing.qos = qos
      if (prefetch !== undefined) existing.prefetch = prefetch
    } else {
      this.#members.push({ client, clientId: client.id, qos, prefetch: prefetch ?? this.options.prefetch, outstanding: new Map() })
    }
    this.idleSince = null
    this.dispatch()
  }

  setPrefetch (client: Connection, prefetch: number): void {
    const member = this.#memberOf(client)
    if (member === undefined) return
    member.prefetch = prefetch
    this.dispatch()
  }

  /** The member is gone (disconnect, unsubscribe): its messages go back. */
  leave (client: Connection): void {
    const index = this.#members.findIndex((m) => m.client === client)
    if (index < 0) return
    const [member] = this.#members.splice(index, 1) as [Member]
    const held = [...member.outstanding.values()].sort((a, b) => a - b)
    for (const seq of held) {
      const inflight = this.#inflight.get(seq)
      if (inflight !== undefined && inflight.member === member) this.#takeBack(inflight, 'member left')
    }
    member.outstanding.clear()
    if (this.#members.length === 0) this.idleSince = Date.now()
    this.dispatch()
  }

  /**
   * Stores (QoS 1) and dispatches a published message. Resolves once the
   * message is durable in this group's queue.
   */
  enqueue (topic: string, payload: Buffer, qos: 0 | 1, checkedEnvelope = false): Promise<void> {
    // Not an async function: a task's append answers with its batch's own
    // promise, not one more wrapped around it (docs/benchmarks.md, "CPU profiles").
    try {
      return this.#enqueue(topic, payload, qos, checkedEnvelope)
    } catch (err) {
      return Promise.reject(err)
    }
  }

  #enqueue (topic: string, payload: Buffer, qos: 0 | 1, checkedEnvelope: boolean): Promise<void> {
    if (this.#closed) return RESOLVED
    if (qos === 0) {
      // Not stored, so a paused group cannot keep it.
      if (this.#paused) this.counters.qos0Dropped++
      else this.#sendQos0(topic, payload)
      return RESOLVED
    }
    if (this.depth >= this.options.maxLength) {
      this.counters.overflowed++
      if (this.options.overflow === 'drop-new') return RESOLVED
      this.#dropOldest()
    }
    const message: GroupMessage = { seq: this.#store.nextSeq(), topic, payload: ownBytes(payload), qos, enqueuedAt: Date.now(), deliveries: 0, checkedEnvelope }
    // Dispatched before the append is durable: a client's QoS 1 publish is
    // acknowledged only once this resolves (authorizePublish waits for it,
    // docs/durability.md "Stored by its group"), and any other is kept by the
    // publish journal until then, so a crash before then loses nothing
    // acknowledged (at least once, [MQTT-4.3.2]). A first send in this turn
    // is then stored with the append, not as an update.
    const stored = this.#store.append(this.definition.key, message)
    this.counters.enqueued++
    this.#pending.push(message)
    this.dispatch()
    return stored
  }

  /** A PUBACK from `client`; false if the identifier is not one of this group's. */
  ack (client: Connection, messageId: number): boolean {
    const member = this.#memberOf(client)
    const seq = member?.outstanding.get(messageId)
    if (member === undefined || seq === undefined) return false
    member.outstanding.delete(messageId)
    const inflight = this.#inflight.get(seq)
    if (inflight !== undefined && inflight.member === member && inflight.messageId === messageId) {
      this.#inflight.delete(seq)
      this.counters.acked++
      this.#remove([seq])
    } else {
      // The lease ran out and the message went elsewhere: this ack is late.
      this.counters.lateAcks++
    }
    this.dispatch()
    return true
  }

  /** Sends waiting messages to members with room in their window. */
  dispatch (): void {
    if (this.#dispatching || this.#closed) return
    this.#dispatching = true
    try {
      this.#expire()
      if (this.#paused) return
      this.#dispatchFrom(this.#returned, false)
      this.#dispatchFrom(this.#pending, true)
    } finally {
      this.#dispatching = false
    }
  }

  /** Drops messages past their TTL (also called from the manager's sweep). */
  sweep (): void {
    this.#expire()
    this.dispatch()
  }

  stats (): GroupStats {
    return {
      key: this.definition.key,
      group: this.definition.group,
      filter: this.definition.filter,
      strategy: this.options.strategy,
      depth: this.depth,
      inflight: this.#inflight.size,
      members: this.#members.map((m) => ({ clientId: m.clientId, inflight: m.outstanding.size, prefetch: m.prefetch })),
      counters: { ...this.counters },
      createdAt: this.definition.createdAt,
      idleSince: this.idleSince,
      paused: this.#paused,
      oldestEnqueuedAt: this.#oldestEnqueuedAt()
    }
  }

  #oldestEnqueuedAt (): number | null {
    const head = this.#pending[this.#head]?.enqueuedAt
    const returned = this.#returned.reduce<number | undefined>((min, m) => min === undefined || m.enqueuedAt < min ? m.enqueuedAt : min, undefined)
    if (head === undefined) return returned ?? null
    return returned === undefined ? head : Math.min(head, returned)
  }

  close (): void {
    this.#closed = true
    if (this.#leaseTimer !== null) clearTimeout(this.#leaseTimer)
    this.#leaseTimer = null
  }

  #dispatchFrom (queue: GroupMessage[], isPending: boolean): void {
    const start = isPending ? this.#head : 0
    let i = start
    let scanned = 0
    // The members that may receive a topic, as the strategy sees them, built
    // once per topic in this pass and refreshed in place for each message
    // (its messages usually share one topic): no arrays and no object per
    // member per message. Membership cannot change during the pass.
    let topic: string | null = null
    let eligible: Member[] = []
    let candidates: Candidate[] = []
    while (i < queue.length && scanned < SCAN_LIMIT) {
      // No member has room, so no message can go, whatever its topic: stop
      // before building candidates. With a backlog this is every enqueue and
      // every ack after the one message it lets go, and with a member the
      // access policy keeps from a topic the scan below would otherwise look
      // at up to SCAN_LIMIT messages for nothing.
      if (!this.#anyRoom()) break
      const message = queue[i] as GroupMessage
      if (message.topic !== topic) {
        topic = message.topic
        eligible = this.#members.filter((m) => m.client.mayReceive(message.topic))
        candidates = eligible.map(toCandidate)
      } else {
        refreshCandidates(candidates, eligible)
      }
      if (!anyCandidateRoom(candidates)) {
        // Every member is full: nothing later can go either. A member the
        // access policy keeps from this topic is not full, just not offered it.
        if (eligible.length === this.#members.length) return
        i++
        scanned++
        continue
      }
      const pick = pickMember(this.options.strategy, candidates, message.topic, this.#turn)
      if (pick < 0) {
        // Only `hash` can have a full member while others have room: this
        // message waits for its member, later ones may go elsewhere.
        if (this.options.strategy !== 'hash') return
        i++
        scanned++
        continue
      }
      this.#turn++
      const fromHead = isPending && i === this.#head
      if (fromHead) {
        this.#releaseHead()
        i++
      } else {
        queue.splice(i, 1)
      }
      this.#send(eligible[pick] as Member, message, fromHead)
    }
    if (isPending) this.#compact()
  }

  /** Whether any member has room in its window, whatever the topic. */
  #anyRoom (): boolean {
    return this.#members.some(hasRoom)
  }

  /** `fromHead`: the oldest waiting message, so every earlier one of the queue has been sent (or dropped). */
  #send (member: Member, message: GroupMessage, fromHead: boolean): void {
    message.deliveries++
    this.counters.delivered++
    const payload = annotateDeliveries(message.payload, message.deliveries, message.checkedEnvelope)
    // A member subscribed at QoS 0 gets it at most once: nothing to wait for.
    if (member.qos === 0) {
      member.client.writePublish({ topic: message.topic, payload, qos: 0, dup: false })
      this.counters.acked++
      this.#remove([message.seq])
      return
    }
    // Record the send, so after a crash a message that was in flight comes
    // back as a redelivery (DUP, delivery count) rather than as new: a first
    // send from the head of the queue moves the group's mark (one small
    // write per batch, group-store.ts `sentThrough`), any other rewrites the message.
    this.#persistDeliveries(message, fromHead && message.deliveries === 1)
    const messageId = member.client.nextPacketId()
    const inflight: Inflight = { message, member, messageId, deadline: Date.now() + this.options.ackTimeoutMs }
    this.#inflight.delete(message.seq) // re-added at the end: the map stays in deadline order (#armLeases)
    this.#inflight.set(message.seq, inflight)
    this.#armLeases()
    member.outstanding.set(messageId, message.seq)
    // [MQTT-3.3.1-1] DUP on every send after the first
    member.client.writePublish({ topic: message.topic, payload, qos: 1, messageId, dup: message.deliveries > 1 })
  }

  #sendQos0 (topic: string, payload: Buffer): void {
    // No acknowledgement, so no window: any connected member will do.
    const eligible = this.#members.filter((m) => m.client.mayReceive(topic))
    const members = eligible.map((m) => ({ clientId: m.clientId, inflight: m.outstanding.size, hasRoom: m.client.writable }))
    const pick = pickMember(this.options.strategy === 'least-inflight' ? 'round-robin' : this.options.strategy, members, topic, this.#turn++)
    if (pick < 0) {
      this.counters.qos0Dropped++
      return
    }
    this.counters.delivered++
    const member = eligible[pick] as Member
    member.client.writePublish({ topic, payload, qos: 0, dup: false })
  }

  /**
   * One timer per group for every lease, armed for the oldest: `#inflight`
   * is in send order (an entry is deleted before it is sent again) and every
   * lease is `ackTimeoutMs` long, so it is in deadline order too. A timer per
   * message cost a setTimeout and a clearTimeout per task
   * (docs/shared-subscriptions.md).
   */
  #armLeases (): void {
    if (this.#leaseTimer !== null || this.#closed) return
    const oldest = this.#inflight.values().next().value
    if (oldest === undefined) return
    this.#leaseTimer = setTimeout(() => {
      this.#leaseTimer = null
      this.#leasesExpired()
    }, Math.max(0, oldest.deadline - Date.now()))
    this.#leaseTimer.unref()
  }

  #leasesExpired (): void {
    const now = Date.now()
    let expired = 0
    for (const inflight of this.#inflight.values()) {
      if (inflight.deadline > now) break
      this.#logger.debug({ group: this.definition.key, clientId: inflight.member.clientId, seq: inflight.message.seq }, 'ack timeout: message taken back')
      // The member keeps the slot until it acks late or leaves: a member that
      // stopped acknowledging should not be sent more.
      this.#takeBack(inflight, 'ack timeout')
      expired++
    }
    if (expired > 0) this.dispatch()
    this.#armLeases()
  }

  #takeBack (inflight: Inflight, _reason: string): void {
    this.#inflight.delete(inflight.message.seq)
    this.counters.redelivered++
    insertBySeq(this.#returned, inflight.message)
  }

  #persistDeliveries (message: GroupMessage, inOrder: boolean): void {
    const written = inOrder ? this.#store.sentThrough(this.definition.key, message) : this.#store.update(this.definition.key, message)
    written.catch((err: unknown) => {
      this.#logger.error({ err, group: this.definition.key }, 'could not store a delivery count')
    })
  }

  #dropOldest (): void {
    const victim = this.#head < this.#pending.length ? this.#releaseHead() : this.#returned.shift()
    if (victim !== undefined) this.#remove([victim.seq])
    this.#compact()
  }

  #expire (): void {
    const ttl = this.options.messageTtlMs
    if (ttl === 0) return
    const cutoff = Date.now() - ttl
    const expired: number[] = []
    this.#returned = this.#returned.filter((m) => {
      if (m.enqueuedAt >= cutoff) return true
      expired.push(m.seq)
      return false
    })
    // pending is in arrival order: expired messages are at its head
    while (this.#head < this.#pending.length && (this.#pending[this.#head] as GroupMessage).enqueuedAt < cutoff) {
      expired.push(this.#releaseHead().seq)
    }
    if (expired.length > 0) {
      this.counters.expired += expired.length
      this.#remove(expired)
      this.#compact()
    }
  }

  /**
   * The message at the head of `#pending`, its slot emptied and the head moved
   * past it: a message sent, dropped or expired from the head must not stay
   * reachable (its payload with it) until `#compact` copies the array, which
   * waits for at least 1,024 of them.
   */
  #releaseHead (): GroupMessage {
    const message = this.#pending[this.#head] as GroupMessage
    this.#pending[this.#head++] = RELEASED
    return message
  }

  #compact (): void {
    if (this.#head > 1024 && this.#head * 2 > this.#pending.length) {
      this.#pending = this.#pending.slice(this.#head)
      this.#head = 0
    }
  }

  #remove (seqs: number[]): void {
    // The removals of one turn share their batch's promise: one failure
    // handler per batch, not a derived promise and a closure per message.
    const removed = this.#store.remove(this.definition.key, seqs)
    if (removed === this.#lastRemoval) return
    this.#lastRemoval = removed
    removed.catch(this.#removalFailed)
  }

  /** The member `client` is, if any; a loop, not a closure per call (every PUBACK looks it up). */
  #memberOf (client: Connection): Member | undefined {
    for (const member of this.#members) if (member.client === client) return member
    return undefined
  }
}

function insertBySeq (list: GroupMessage[], message: GroupMessage): void {
  let i = list.length
  while (i > 0 && (list[i - 1] as GroupMessage).seq > message.seq) i--
  list.splice(i, 0, message)
}

/** A member that may receive the topic (ACLs, docs/security.md), as the dispatch strategy sees it. */
function toCandidate (m: Member): Candidate {
  return { clientId: m.clientId, inflight: m.outstanding.size, hasRoom: hasRoom(m) }
}

/** The windows moved since the candidates were built (a send, an ack): read them again. */
function refreshCandidates (candidates: Candidate[], eligible: readonly Member[]): void {
  for (let k = 0; k < candidates.length; k++) {
    const c = candidates[k] as Candidate
    const m = eligible[k] as Member
    c.inflight = m.outstanding.size
    c.hasRoom = hasRoom(m)
  }
}

function anyCandidateRoom (candidates: readonly Candidate[]): boolean {
  for (const c of candidates) if (c.hasRoom) return true
  return false
}

/** Room in its window for one more QoS 1 message, and a socket taking writes. */
function hasRoom (m: Member): boolean {
  return m.outstanding.size < m.prefetch && m.client.writable
}
