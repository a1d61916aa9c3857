/*
 * The one place that knows Aedes (docs/mqtt-adapter.md). Aedes calls in
 * through its hooks, its events and the persistence's PUBACK path; the
 * adapter calls the services, which are plain classes with async methods, in
 * this order:
 *
 * ACCEPT      (broker/index.ts, before Aedes) connection limits: total, per
 *             address, connect rate → handle: packet-size bound on the parser.
 * CONNECT     preConnect: zero-byte id with a persistent session, client id
 *             and keep-alive limits (CONNACK 0x02) → access.authenticate →
 *             the will checked as a PUBLISH (CONNACK 0x05) → (Aedes restores a
 *             persistent session: authorizeSubscribe for each stored filter)
 *             → CONNACK → clientReady: groups.join for each restored `$share/`
 *             filter → Aedes streams the session's queue.
 * PUBLISH     Aedes checks the topic → authorizePublish: publish rate
 *             (throttle), topic size, well-formed UTF-8, `$SYS/` and `$share/`
 *             refused, access.authorizePublish; `$delayed/{s}/{topic}`: access
 *             on `{topic}`, delay checked (a bad one becomes a dead letter),
 *             room checked, gate on `{topic}`, delayed.accept (durable) →
 *             otherwise gate.inspect (wrap, dead-letter or duplicate) →
 *             a client's QoS 1: groups.route if a group matches (durable
 *             before the PUBACK), journal.record if retained or a persistent
 *             session matches (docs/durability.md) → idempotency key committed →
 *             Aedes writes the PUBACK (QoS 1) or stores the packet and writes
 *             PUBREC (QoS 2) → Aedes stores retained, queues for offline
 *             persistent sessions, emits to live subscribers (see DELIVERY) →
 *             published: prefetch / schedule-request commands → groups.route
 *             (unless routed at the gate; durable for QoS 1) → journal.settle.
 * SUBSCRIBE   Aedes checks the filter → authorizeSubscribe (each filter):
 *             well-formed UTF-8, filter size, subscriptions per client,
 *             access.authorizeSubscribe → `$delayed/` refused (0x80) →
 *             `$share/`: groups.prepare (durable), QoS at most 1 → Aedes
 *             stores the granted subscriptions only (internals/granted-
 *             subscriptions.ts; a refused one stored before is removed) →
 *             SUBACK → subscribe: groups.join → retained messages.
 * DELIVERY    mq.emit (EmitOrder renumbers) → a subscription's deliver0
 *             (steps aside for a higher-QoS overlap) or deliverQoS → Aedes's
 *             dedupe → authorizeForward: access.authorizeReceive (withheld if
 *             refused), live-vs-queue order for persistent sessions, QoS
 *             downgrade to the highest granted, creation counter restored →
 *             Aedes takes a packet id and writes. Group deliveries bypass
 *             this: the group offers a message only to members the access
 *             policy lets receive it, and writes to the Connection, with a
 *             packet id from the same counter.
 * PUBACK      persistence.outgoingClearMessageId → groups.ack (a group
 *             delivery) → otherwise the session queue entry goes.
 * UNSUBSCRIBE unsubscribe: groups.leave.   DISCONNECT clientDisconnect: groups.leaveAll.
 *
 * Every hook runs inside the HookGuard: an exception refuses that packet or
 * client (PUBLISH: disconnect; SUBSCRIBE: 0x80; CONNECT: CONNACK 0x03), is
 * logged once and counted, and never reaches the event loop. A connection
 * Aedes closes for what its client sent is counted and logged once
 * (`stats().clientErrors`).
 */
import { Aedes, type AedesPublishPacket, type Client, type ConnectPacket, type Subscription } from 'aedes'
import mqemitter from 'mqemitter'
import type { EventEmitter } from 'node:events'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { isShareTopic } from '../../protocol/topics.js'
import { journalNeeded } from '../durability/durable-destinations.js'
import type { PublishJournal } from '../durability/publish-journal.js'
import { peerOf } from '../listeners/peer.js'
import type { LevelPersistence } from '../persistence/level-persistence.js'
import type { DelayedMessages } from '../scheduler/delayed-messages.js'
import { handleScheduleRequest } from '../scheduler/schedule-api.js'
import type { Scheduler } from '../scheduler/scheduler.js'
import type { SharedSubscriptions } from '../shared/shared-subscriptions.js'
import type { LimitCounters } from '../security/limit-counters.js'
import type { TaskGate } from '../tasks/task-gate.js'
import type { PublishPacket } from '../types/mqtt.js'
import { allowAll, type AccessPolicy } from './access.js'
import { ClientLimits, UNLIMITED, type ClientLimitSettings } from './client-limits.js'
import { HookGuard, type FaultProbe } from './guard.js'
import { createAuthenticate } from './hooks/authenticate.js'
import { createAuthorizeForward } from './hooks/authorize-forward.js'
import { createAuthorizePublish } from './hooks/authorize-publish.js'
import { createAuthorizeSubscribe } from './hooks/authorize-subscribe.js'
import { createPublished } from './hooks/published.js'
import { createPreConnect } from './hooks/pre-connect.js'
import { clientInfo } from './hooks/util.js'
import { Connections } from './internals/connection.js'
import { skipClosedClients } from './internals/closed-clients.js'
import { coalesceWrites } from './internals/coalesced-writes.js'
import { EmitOrder } from './internals/emit-order.js'
import { limitPacketSize } from './internals/max-packet-size.js'
import { markGranted, storeOnlyGranted } from './internals/granted-subscriptions.js'
import { boundEmitRecursion } from './internals/emit-recursion.js'
import { fixOverlappingSubscriptions } from './internals/overlapping-subscriptions.js'
import { JournalSettlement } from './internals/journal-settlement.js'
import { leanClient } from './internals/lean-client.js'
import { skipNumberCache } from './internals/number-cache.js'
import { writePacketsWhole } from './internals/packet-writer.js'
import { createQueueWriter } from './internals/queue-writer.js'
import { subscriptionsOf } from './internals/subscriptions.js'
import { connectedClientsOf } from './internals/clients.js'
import { assignConnId, connFields, connIdOf } from './internals/conn-ids.js'
import { payloadBytes, TrafficCounters, type Traffic } from './traffic.js'

export type { ByQos, Traffic } from './traffic.js'

export interface MqttAdapterOptions {
  /** Aedes's broker id: it tells our packets from others' (EmitOrder). */
  id: string
  persistence: LevelPersistence
  logger: Logger
  /** Who may connect, publish, subscribe. @defaultValue {@link allowAll} */
  access?: AccessPolicy
  /** Test seam, see {@link FaultProbe}. */
  faults?: FaultProbe
  /** What one client may cost (`limits.*`). @defaultValue {@link UNLIMITED} */
  clientLimits?: ClientLimitSettings
  /** How long a socket may stay open without a CONNECT (`limits.connectTimeoutMs`). @defaultValue Aedes's 30 s */
  connectTimeoutMs?: number
  /** Most QoS 2 PUBLISH packets of one client waiting for PUBREL (`limits.maxInflightInbound`). @defaultValue Aedes's 1000 */
  maxInflightInbound?: number
  /** Where limit hits are counted and logged once. */
  limits?: LimitCounters
  /** Largest packet read, fixed header included (`limits.maxPacketBytes`). @defaultValue mqtt-packet's 256 MB */
  maxPacketBytes?: number
}

/** The services the adapter calls, built before Aedes (they need the store, not Aedes). */
export interface MqttServices {
  gate: Pick<TaskGate, 'inspect' | 'published'>
  groups: Pick<SharedSubscriptions, 'prepare' | 'route' | 'setPrefetch' | 'join' | 'leave' | 'leaveAll' | 'ack' | 'groups' | 'matches'>
  delayed: Pick<DelayedMessages, 'hasRoom' | 'accept' | 'refused'>
  journal: Pick<PublishJournal, 'record' | 'settle' | 'holds'>
  schedules: Scheduler
  /** Longest `$delayed/{seconds}/` accepted. */
  maxDelaySeconds: number
}

type Callback = (error?: Error | null) => void

/**
 * Clients and subscriptions, counted when read (a scrape, a `$SYS` round),
 * not on the message path (`stats().sessions`, docs/operations.md).
 */
export interface SessionStats {
  /** Subscriptions of the clients connected now, by filter (`$share/` ones included, one per member). */
  subscriptions: number
  /** Most clients connected at once since start (Mosquitto's `clients/maximum`). */
  maximumClients: number
  /** Clients connected now plus persistent sessions with stored subscriptions whose client is away (Mosquitto's `clients/total`). */
  totalClients: number
  /** Retained messages stored. */
  retainedMessages: number
}

export class MqttAdapter {
  readonly #options: MqttAdapterOptions
  readonly #access: AccessPolicy
  readonly #guard: HookGuard
  /** One function for every connection, not a closure each (docs/benchmarks.md, "Idle connections"). */
  readonly #deliver0Failed = (err: unknown, client: Client): void => { this.#guard.failed('deliver0', client, err) }
  readonly #clientLimits: ClientLimits
  readonly #connections: Connections
  readonly #emitOrder: EmitOrder
  #aedes: Aedes | null = null
  /** Set once Aedes has opened its persistence: a publish before that would miss offline sessions. */
  #listening: Aedes | null = null
  /** Publishes from services started before Aedes wait here (delayed messages due at start). */
  readonly #started: Promise<Aedes>
  #resolveStarted!: (aedes: Aedes) => void
  #rejectStarted!: (err: Error) => void
  #closing: Promise<void> | null = null
  #withheld = 0
  /** PUBLISH packets from clients, and to them (group deliveries included), since start. */
  readonly #traffic = new TrafficCounters()
  /** Most clients connected at once since start. */
  #maximumClients = 0
  #clientErrors = 0
  readonly #erred = new WeakSet<Client>()
  /** The will topic of each CONNECT, from preConnect to authenticate. */
  readonly #wills = new WeakMap<Client, string>()
  readonly #errorListeners: Array<(err: Error) => void> = []
  #settlement: JournalSettlement | null = null

  constructor (options: MqttAdapterOptions) {
    this.#options = options
    this.#access = options.access ?? allowAll
    this.#guard = new HookGuard(options.logger, options.faults)
    this.#clientLimits = new ClientLimits(options.clientLimits ?? UNLIMITED, options.limits)
    const access = this.#access
    const traffic = this.#traffic
    this.#connections = new Connections((client, topic) => access.authorizeReceive(clientInfo(client), topic), (bytes, qos) => {
      traffic.sent(qos, bytes)
    })
    this.#emitOrder = new EmitOrder(options.id)
    this.#started = new Promise<Aedes>((resolve, reject) => {
      this.#resolveStarted = resolve
      this.#rejectStarted = reject
    })
    this.#started.catch(() => undefined) // a start abandoned before anyone published
  }

  /** The Aedes instance (after {@link start}). */
  get aedes (): Aedes {
    if (this.#aedes === null) throw new Error('the MQTT adapter has not started')
    return this.#aedes
  }

  /** Hook failures since start. */
  get hookErrors (): number {
    return this.#guard.errors
  }

  /** Connections closed since start for what their client sent (malformed or refused packets, timeouts). */
  get clientErrors (): number {
    return this.#clientErrors
  }

  /** PUBLISH packets and payload bytes received from and sent to clients since start. */
  get traffic (): Readonly<Traffic> {
    return this.#traffic.read()
  }

  /** Subscriptions, clients at most and in all, retained messages: counted now (O(subscriptions + sessions)), for a scrape or a `$SYS` round. */
  sessionStats (): SessionStats {
    const persistence = this.#options.persistence
    const aedes = this.#aedes
    let subscriptions = 0
    let away = 0
    if (aedes !== null) {
      const clients = connectedClientsOf(aedes)
      for (const id in clients) {
        const subs = clients[id] === undefined ? undefined : subscriptionsOf(clients[id]) as Record<string, unknown> | undefined
        if (subs !== undefined) for (const _filter in subs) subscriptions++
      }
      for (const id of persistence.storedSessionIds()) if (clients[id] === undefined) away++
    }
    const connected = aedes?.connectedClients ?? 0
    return {
      subscriptions,
      maximumClients: Math.max(this.#maximumClients, connected),
      totalClients: connected + away,
      retainedMessages: persistence.retainedCount
    }
  }

  /** Deliveries the access policy withheld from a subscriber since start. */
  get withheldDeliveries (): number {
    return this.#withheld
  }

  /** Builds Aedes with every hook bound to `services`, opens its persistence, attaches the lifecycle listeners. */
  async start (services: MqttServices): Promise<void> {
    const { logger, persistence, connectTimeoutMs, maxInflightInbound } = this.#options
    storeOnlyGranted(persistence) // Aedes stores refused filters too (internals/granted-subscriptions.ts)
    // A client's journal entry goes in the batch that queues its message (internals/journal-settlement.ts).
    const settlement = new JournalSettlement(services.journal, (topic) => services.groups.matches(topic))
    persistence.onEnqueue((packet) => {
      // Inside the persistence's enqueue: a throw must not fail the enqueue.
      // Without the early settle, `published` settles as before.
      try {
        settlement.enqueued(packet)
      } catch (err) {
        logger.error({ err, topic: packet.topic }, 'could not settle a publish journal entry at enqueue')
      }
    })
    const journal = services.journal
    services = { ...services, journal: { record: journal.record.bind(journal), holds: journal.holds.bind(journal), settle: (packet) => { settlement.settle(packet) } } }
    this.#settlement = settlement
    const forward = this.#authorizeForward()
    // A reconnecting client's queue goes out in ranges, not one message per turn (internals/queue-writer.ts).
    persistence.setQueueWriter(createQueueWriter(forward))
    const aedes = new Aedes({
      id: this.#options.id,
      mq: this.#emitOrder.wrap(boundEmitRecursion(mqemitter({ concurrency: 100, matchEmptyLevels: true }))),
      persistence,
      ...(connectTimeoutMs === undefined ? {} : { connectTimeout: connectTimeoutMs }),
      ...(maxInflightInbound === undefined ? {} : { maxInflightInbound }),
      preConnect: this.#preConnect(), // [MQTT-3.1.3-8] and the CONNECT limits, see hooks/pre-connect.ts
      authenticate: this.#authenticate(),
      authorizePublish: this.#authorizePublish(services),
      authorizeSubscribe: this.#authorizeSubscribe(services),
      authorizeForward: forward,
      published: this.#published(services)
    })
    this.#aedes = aedes
    skipClosedClients(aedes) // a socket closed mid-CONNECT stayed registered (internals/closed-clients.ts)
    skipNumberCache() // no 7 MB table of packet-identifier Buffers (internals/number-cache.ts)
    writePacketsWhole() // PUBLISH and PUBACK in one write each (internals/packet-writer.ts)
    // From the start: an 'error' with no listener would be thrown from inside
    // Aedes. It emits one for store failures it survives; its typings do not list it.
    ;(aedes as unknown as EventEmitter).on('error', (err: Error) => {
      logger.error({ err }, 'broker error')
      for (const listener of this.#errorListeners) listener(err)
    })
    await aedes.listen()
    persistence.setAckInterceptor((client, messageId) => this.#puback(services, client, messageId))
    this.#attachLifecycle(aedes, services)
    aedes.on('clientError', (client, err) => { this.#clientError(client, err) })
    aedes.on('connectionError', (client, err) => { this.#clientError(client, err) })
    this.#listening = aedes
    this.#resolveStarted(aedes)
  }

  /** Hands a new connection to Aedes, with the per-connection patches applied before it can subscribe. */
  handle (socket: Duplex): void {
    // A TCP or TLS socket, or a WebSocket's byte stream (broker/listeners/).
    coalesceWrites(socket) // one writev per socket per turn (internals/coalesced-writes.ts)
    const client = this.aedes.handle(socket)
    assignConnId(client)
    leanClient(client) // no stream, Set or property dictionary an idle connection never uses (internals/lean-client.ts)
    fixOverlappingSubscriptions(client, this.#deliver0Failed)
    // Before the first read: a huge Remaining Length closes the socket before its body is buffered.
    if (this.#options.maxPacketBytes !== undefined) limitPacketSize(client, this.#options.maxPacketBytes, this.#options.limits)
  }

  /** Publishes from the broker itself (no client); resolves once stored and routed. Waits for {@link start}. */
  async publish (packet: PublishPacket): Promise<void> {
    const aedes = this.#listening ?? await this.#started
    await new Promise<void>((resolve, reject) => {
      aedes.publish(packet, (err?: Error) => { if (err) reject(err); else resolve() })
    })
  }

  /** Aedes's 'error' events (store failures it survived): logged, then passed to `listener`. */
  onError (listener: (err: Error) => void): void {
    this.#errorListeners.push(listener)
  }

  /** The start will not happen (a step before it failed): publishes waiting for it fail. */
  abandon (): void {
    if (this.#listening === null) this.#rejectStarted(new Error('the broker did not start'))
  }

  /** Disconnects every client and closes Aedes's emitter. Safe to call more than once. */
  close (): Promise<void> {
    const aedes = this.#aedes
    if (aedes === null) return Promise.resolve()
    this.#closing ??= new Promise<void>((resolve) => aedes.close(() => resolve()))
    return this.#closing
  }

  /** Also keeps the CONNECT's will topic for authenticate (hooks/authenticate.ts): only preConnect is handed the packet. */
  #preConnect () {
    const preConnect = createPreConnect(this.#clientLimits)
    return (client: Client, packet: ConnectPacket, done: (error: Error | null, success: boolean) => void): void => {
      if (packet.will != null) this.#wills.set(client, packet.will.topic)
      preConnect(client, packet, done)
    }
  }

  #authenticate () {
    return createAuthenticate({ guard: this.#guard, access: this.#access, limits: this.#clientLimits, logger: this.#options.logger, willOf: (client) => this.#wills.get(client) })
  }

  #authorizePublish (services: MqttServices) {
    const guard = this.#guard
    const persistence = this.#options.persistence
    const authorize = createAuthorizePublish({
      ...services,
      // Only a publish something durable receives is written before its PUBACK (docs/durability.md, "What is journaled").
      needsJournal: journalNeeded(persistence),
      access: this.#access,
      limits: this.#clientLimits,
      logger: this.#options.logger,
      isQos2Resend: (client, packet) => persistence.incomingGetPacket(client, packet).then(() => true, () => false)
    })
    // A refused or failed publish: Aedes ends the connection, as MQTT 3.1.1
    // has no negative PUBACK; nothing was acknowledged.
    const traffic = this.#traffic
    return (client: Client | null, packet: Parameters<typeof authorize>[1], callback: Callback): void => {
      if (client !== null) traffic.received(packet.qos, payloadBytes(packet.payload))
      // Only a client's QoS 1 is journaled: no closure per call for the rest.
      if (client === null || packet.qos !== 1) {
        guard.callback('authorizePublish', client, authorize, client, packet, callback)
        return
      }
      guard.callback('authorizePublish', client, authorize, client, packet, (err?: Error | null) => {
        if (err == null) this.#settlement?.accepted(packet)
        callback(err)
      })
    }
  }

  #authorizeSubscribe (services: MqttServices) {
    const guard = this.#guard
    const { logger, persistence } = this.#options
    const clientLimits = this.#clientLimits
    const authorize = createAuthorizeSubscribe({
      access: this.#access,
      groups: services.groups,
      limits: this.#clientLimits,
      logger,
      decided: (client, sub, granted) => {
        if (granted) {
          markGranted(sub)
          return
        }
        clientLimits.subscriptionDropped(client, sub.topic)
        if (!client.clean) {
          // Refused now, perhaps stored before (an ACL changed since): it must
          // not go on collecting messages for the session.
          persistence.removeSubscriptions(client, [sub.topic]).catch((err: unknown) => {
            logger.error({ err, ...connFields(client), topic: sub.topic }, 'could not remove a refused subscription')
          })
        }
      }
    })
    return (client: Client, sub: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void): void => {
      guard.async('authorizeSubscribe', client, () => authorize(client, sub),
        (granted) => callback(null, granted),
        () => callback(null, null)) // SUBACK 0x80 for this filter (MQTT 3.1.1 §3.9.3)
    }
  }

  #authorizeForward () {
    const guard = this.#guard
    const access = this.#access
    const forward = createAuthorizeForward(this.#emitOrder, this.#options.persistence, (client, topic) => {
      if (access.authorizeReceive(clientInfo(client), topic)) return true
      this.#withheld++
      return false
    })
    const traffic = this.#traffic
    return (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null => {
      // Guarded inline, not through guard.sync: this runs for every delivery.
      try {
        guard.probe('authorizeForward', client)
        const forwarded = forward(client, packet)
        if (forwarded !== null) traffic.sent(forwarded.qos, payloadBytes(forwarded.payload))
        return forwarded
      } catch (err) {
        guard.failed('authorizeForward', client, err)
        // Nothing more reaches this client; its session keeps the message.
        // Null would make Aedes delete the queued copy of a replay (it has a
        // packet id), so a replay goes on to the closed socket instead.
        client.conn.destroy()
        return packet.messageId === undefined || client.clean ? null : packet
      }
    }
  }

  #published (services: MqttServices) {
    const guard = this.#guard
    const { logger } = this.#options
    const published = createPublished({
      groups: services.groups,
      journal: services.journal,
      logger,
      connectionOf: (client) => this.#connections.of(client),
      scheduleRequest: (client, payload) => {
        handleScheduleRequest(services.schedules, client.id, payload, logger)
          .then((answer) => answer === null ? undefined : this.publish({ cmd: 'publish', topic: answer.topic, payload: Buffer.from(JSON.stringify(answer.reply)), qos: 1, retain: false, dup: false }))
          .catch((err: unknown) => { logger.error({ err, ...connFields(client) }, 'could not answer a schedule request') })
      }
    })
    const gate = services.gate
    // Aedes types `client` as a Client; it is null for the broker's own publishes.
    return (packet: AedesPublishPacket, client: Client | null, callback: Callback): void => {
      gate.published(packet.topic, packet.payload) // task outcomes (broker/tasks/task-outcomes.ts)
      guard.callback('published', client, published, packet, client, callback)
    }
  }

  /**
   * A connection Aedes closed for what its client sent, or failed to send:
   * a malformed packet, a refused PUBLISH, a keep-alive or CONNECT timeout.
   * Counted (`stats().clientErrors`; the limits Aedes enforces itself also
   * under `stats().limits`) and logged once, as the connection ends with it.
   * A socket error (a reset, say) is the network's, not the client's.
   */
  #clientError (client: Client | null, err: Error & { code?: unknown }): void {
    // A client that never sent CONNECT has no id yet: its address it is.
    const address = client === null ? undefined : peerOf(client.conn)?.remoteAddress
    const clientId: unknown = client?.id
    const conn = connIdOf(client)
    if (typeof err.code === 'string') {
      this.#options.logger.debug({ clientId, conn, address, err: err.message }, 'connection error')
      return
    }
    // Aedes may report one bad packet more than once as the connection ends.
    if (client !== null) {
      if (this.#erred.has(client)) return
      this.#erred.add(client)
    }
    this.#clientErrors++
    this.#options.logger.info({ clientId, conn, address, reason: err.message }, 'connection closed for what the client sent')
    const limits = this.#options.limits
    const offender = typeof clientId === 'string' ? clientId : address ?? 'unknown'
    if (err.message === 'connect did not arrive in time') limits?.hit('connectTimeoutMs', offender)
    else if (err.message.startsWith('maxInflightInbound exceeded')) limits?.hit('maxInflightInbound', offender)
    else if (err.message === 'topic has too many levels') limits?.hit('maxTopicLevels', offender)
  }

  /** A PUBACK (or PUBCOMP): true if a group claims it. A failure disconnects the client, whose groups then take their messages back. */
  #puback (services: MqttServices, client: { id: string }, messageId: number): boolean {
    // Guarded inline, not through guard.sync: this runs for every PUBACK, and
    // two closures per call were a visible part of the broker's garbage per task.
    const guard = this.#guard
    try {
      guard.probe('puback', client)
      const connection = this.#connections.known(client)
      return connection !== undefined && services.groups.ack(connection, messageId)
    } catch (err) {
      guard.failed('puback', client, err)
      try {
        (client as Client).conn.destroy()
      } catch (again) {
        guard.failed('puback', client, again)
      }
      return true
    }
  }

  /** Group membership follows Aedes's subscription events; a failure disconnects that client. */
  #attachLifecycle (aedes: Aedes, services: MqttServices): void {
    const { groups } = services
    const guard = this.#guard
    const disconnect = (client: Client) => (): void => { client.conn.destroy() }
    aedes.on('subscribe', (subs, client) => {
      guard.sync('subscribe', client, () => {
        for (const sub of subs) {
          if (isShareTopic(sub.topic) && (sub.qos as number) !== 128) groups.join(this.#connections.of(client), sub.topic, sub.qos)
        }
      }, disconnect(client))
    })
    // Subscriptions restored with a persistent session emit no 'subscribe'.
    aedes.on('clientReady', (client) => {
      guard.sync('clientReady', client, () => {
        const subs = subscriptionsOf(client)
        for (const topic in subs) {
          if (isShareTopic(topic)) groups.join(this.#connections.of(client), topic, subs[topic]?.qos ?? 0)
        }
      }, disconnect(client))
    })
    aedes.on('unsubscribe', (topics, client) => {
      guard.sync('unsubscribe', client, () => {
        for (const topic of topics) this.#clientLimits.subscriptionDropped(client, topic)
        const connection = this.#connections.known(client)
        if (connection !== undefined) for (const topic of topics) groups.leave(connection, topic)
      }, disconnect(client))
    })
    const logger = this.#options.logger
    aedes.on('client', (client) => {
      if (aedes.connectedClients > this.#maximumClients) this.#maximumClients = aedes.connectedClients
      // Fields built only when the line is written: one connect or disconnect each, thousands a second in a storm.
      if (logger.isLevelEnabled('debug')) logger.debug({ ...connFields(client), address: peerOf(client.conn)?.remoteAddress, clean: client.clean }, 'client connected')
    })
    aedes.on('clientDisconnect', (client) => {
      if (logger.isLevelEnabled('debug')) logger.debug(connFields(client), 'client disconnected')
      guard.sync('clientDisconnect', client, () => {
        const connection = this.#connections.known(client)
        if (connection !== undefined) groups.leaveAll(connection)
      }, () => undefined)
    })
  }
}
