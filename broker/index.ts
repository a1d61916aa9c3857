import { EventEmitter } from 'node:events'
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket, type Subscription } from 'aedes'
import mqemitter from 'mqemitter'
import type { Logger } from 'pino'
import { createForwarder } from './delivery/forward.js'
import { fixOverlappingSubscriptions } from './delivery/overlapping-subscriptions.js'
import { EmitOrder } from './durability/emit-order.js'
import { createAuthorizePublish, isDelayedCarrier } from './hooks/authorize-publish.js'
import { systemClock } from './scheduler/clock.js'
import { DelayedMessages, type DelayedStats } from './scheduler/delayed-messages.js'
import { DelayedStore } from './scheduler/delayed-store.js'
import type { ScheduleInfo, ScheduleInput } from '../protocol/schedules.js'
import { handleScheduleRequest } from './scheduler/schedule-api.js'
import { Scheduler, type SchedulerStats } from './scheduler/scheduler.js'
import { PublishJournal } from './durability/publish-journal.js'
import { listenTcp, type TcpListener } from './listeners/tcp.js'
import { createLogger } from './logger.js'
import { resolveBrokerOptions, type BrokerOptions } from './options.js'
import { classifyOpenError, createPersistence } from './persistence/open-persistence.js'
import type { LevelPersistence } from './persistence/level-persistence.js'
import { LevelGroupStore } from './shared/level-group-store.js'
import { DEAD_LETTER_GROUP, isDelayedTopic, isShareTopic, parseShareTopic, PREFETCH_TOPIC, SCHEDULE_REQUEST_TOPIC, taskShareFilter } from '../protocol/topics.js'
import type { GroupStats } from './shared/shared-group.js'
import { SharedSubscriptions } from './shared/shared-subscriptions.js'
import { TaskSchemas } from '../protocol/schema-registry.js'
import { TaskGate, type TaskGateStats } from './tasks/task-gate.js'

export type { BrokerOptions, DelayedOptions, LogLevel, PersistenceKind, TaskOptions } from './options.js'
export type { DelayedStats, DelayedRefusal } from './scheduler/delayed-messages.js'
export type { SchedulerStats } from './scheduler/scheduler.js'
export type { CatchUp, ScheduleInfo, ScheduleInput } from '../protocol/schedules.js'
export { ManualClock, type Clock } from './scheduler/clock.js'
export {
  delayedTopic, DELAYED_PREFIX, DELAYED_DEAD_LETTER_TOPIC, DEAD_LETTER_GROUP, SCHEDULE_REQUEST_TOPIC, REPLIES_PREFIX, PREFETCH_TOPIC,
  taskTopic, taskShareFilter, resultTopic, deadLetterTopic
} from '../protocol/topics.js'
export { envelopeDefaults } from '../protocol/envelope.js'
export type { GateDeadLetter, GateDeadLetterReason } from '../protocol/messages.js'
export type { TaskGateStats } from './tasks/task-gate.js'
export type { DispatchStrategy, GroupOptions, OverflowPolicy, SharedSubscriptionOptions } from './shared/group-options.js'
export type { GroupCounters, GroupStats, MemberStats } from './shared/shared-group.js'
export { brokerDefaults } from './options.js'
export * from '../protocol/errors.js'

export interface BrokerEvents {
  /** A message was not queued for `clientId`: its queue is at `maxQueuedPerClient`. */
  'queue-overflow': [clientId: string, topic: string]
  /** A store or protocol failure the broker logged and survived. */
  error: [err: Error]
}

export interface BrokerStats {
  connectedClients: number
  /** Messages dropped at the per-client queue bound since start. */
  droppedMessages: number
  /** Messages waiting per persistent-session client. */
  queuedMessages: Record<string, number>
  /** Shared-subscription groups: depth, members, in flight, counters. */
  sharedGroups: GroupStats[]
  /** The task gate: accepted, wrapped, dead-lettered, duplicate submissions. */
  tasks: TaskGateStats
  /** Delayed messages: pending, fired, refused by reason. */
  delayed: DelayedStats
  /** Periodic schedules: how many, ticks fired and skipped. */
  scheduler: SchedulerStats
}

/** Runtime management of periodic schedules (the client library's `client.schedules` reaches the same over MQTT). */
export interface BrokerSchedules {
  /** Creates or replaces a schedule; a ScheduleError (bad cron, zone, topic or task payload) stores nothing. */
  upsert (schedule: ScheduleInput): Promise<ScheduleInfo>
  /** Every schedule with `nextRunAt` and `lastRunAt`. */
  list (): ScheduleInfo[]
  /** One schedule; FLEETQ_SCHEDULE_NOT_FOUND if there is none of that name. */
  get (name: string): ScheduleInfo
  /** FLEETQ_SCHEDULE_NOT_FOUND if there is none of that name. */
  remove (name: string): Promise<void>
}

interface BrokerParts {
  aedes: Aedes
  listener: TcpListener
  persistence: LevelPersistence
  shared: SharedSubscriptions
  tasks: TaskGate
  journal: PublishJournal
  delayed: DelayedMessages
  scheduler: Scheduler
  logger: Logger
}

/** A running fleetq broker. Create it with {@link createBroker}. */
export class Broker extends EventEmitter<BrokerEvents> {
  /** The Aedes instance, for advanced use (hooks, events). */
  readonly aedes: Aedes
  readonly logger: Logger
  readonly #listener: TcpListener
  readonly #persistence: LevelPersistence
  readonly #shared: SharedSubscriptions
  readonly #tasks: TaskGate
  readonly #journal: PublishJournal
  readonly #delayed: DelayedMessages
  readonly #scheduler: Scheduler
  /** Periodic schedules: upsert, list, get, remove (docs/scheduling.md). */
  readonly schedules: BrokerSchedules
  #closing: Promise<void> | null = null

  /** @internal use {@link createBroker} */
  constructor ({ aedes, listener, persistence, shared, tasks, journal, delayed, scheduler, logger }: BrokerParts) {
    super()
    this.#tasks = tasks
    this.#journal = journal
    this.aedes = aedes
    this.#listener = listener
    this.#persistence = persistence
    this.#shared = shared
    this.#delayed = delayed
    this.#scheduler = scheduler
    this.logger = logger
    this.schedules = {
      upsert: (schedule) => scheduler.upsert(schedule, 'api'),
      list: () => scheduler.list(),
      get: (name) => scheduler.get(name),
      remove: (name) => scheduler.remove(name)
    }
    persistence.on('queue-overflow', (clientId, topic) => this.emit('queue-overflow', clientId, topic))
  }

  /** The bound TCP port (useful with `port: 0`). */
  get port (): number {
    return this.#listener.address.port
  }

  get host (): string {
    return this.#listener.address.address
  }

  /** `mqtt://host:port` of the TCP listener. */
  get url (): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host
    return `mqtt://${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${this.port}`
  }

  stats (): BrokerStats {
    return {
      connectedClients: this.aedes.connectedClients,
      droppedMessages: this.#persistence.droppedMessages,
      queuedMessages: Object.fromEntries(this.#persistence.queueSizes()),
      sharedGroups: this.#shared.stats(),
      tasks: this.#tasks.stats(),
      delayed: this.#delayed.stats(),
      scheduler: this.#scheduler.stats()
    }
  }

  /**
   * Deletes a shared-subscription group and its queued messages. Fails with
   * FLEETQ_GROUP_HAS_MEMBERS while members are subscribed.
   */
  async deleteSharedGroup (group: string, filter: string): Promise<void> {
    await this.#shared.deleteGroup(group, filter)
  }

  /** Publishes a message from the broker itself (no client). Resolves once it is stored and routed. */
  async publish (packet: Omit<PublishPacket, 'cmd' | 'dup' | 'retain' | 'qos'> & Partial<Pick<PublishPacket, 'qos' | 'retain'>>): Promise<void> {
    await publishOn(this.aedes, { cmd: 'publish', dup: false, qos: 0, retain: false, ...packet })
  }

  /**
   * Stops accepting connections, disconnects clients, writes out and closes
   * the store. Safe to call more than once; every step runs even if one fails.
   */
  close (): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close (): Promise<void> {
    const failures: unknown[] = []
    const step = async (fn: () => Promise<void>): Promise<void> => {
      try { await fn() } catch (err) { failures.push(err) }
    }
    const listenerClosed = this.#listener.close()
    await step(() => this.#scheduler.close())
    await step(() => this.#delayed.close())
    // Before Aedes closes its emitter: a publish it already acknowledged but
    // is still routing would otherwise stop half-way and be replayed (and
    // delivered twice) on the next start.
    await step(() => this.#journal.drain())
    await step(() => new Promise<void>((resolve) => this.aedes.close(() => resolve())))
    await step(() => listenerClosed)
    await step(() => this.#shared.close())
    await step(() => this.#tasks.close())
    await step(() => this.#persistence.destroy())
    this.logger.info('broker closed')
    if (failures.length > 0) throw new AggregateError(failures, 'broker did not close cleanly')
  }
}

/**
 * Starts a broker: opens the store, replays the publish journal, then listens.
 * Resolves once the broker accepts connections.
 */
export async function createBroker (options: BrokerOptions = {}): Promise<Broker> {
  const resolved = resolveBrokerOptions(options)
  const logger = resolved.logger ?? createLogger(resolved.logLevel)
  const persistence = await createPersistence(resolved)
  // Schemas first: a bad schema stops the broker before it opens anything.
  const schemas = await TaskSchemas.load({ dir: resolved.tasks.schemasDir, allowUnknownTypes: resolved.tasks.allowUnknownTypes })
  const journal = new PublishJournal(persistence, logger)

  // Aedes needs its id before we can tell our packets from others'.
  const id = resolved.id ?? crypto.randomUUID()
  const emitOrder = new EmitOrder(id)
  const mq = emitOrder.wrap(mqemitter({ concurrency: 100, matchEmptyLevels: true }))

  // Set once the store is open; Aedes's hooks reach them only after listen.
  let shared: SharedSubscriptions | undefined
  let tasks: TaskGate | undefined
  let delayed: DelayedMessages | undefined
  let scheduler: Scheduler | undefined
  const clock = resolved.clock ?? systemClock

  function answerScheduleRequest (schedules: Scheduler, clientId: string, payload: Buffer): void {
    handleScheduleRequest(schedules, clientId, payload, logger)
      .then((answer) => answer === null ? undefined : publishOn(aedes, { cmd: 'publish', topic: answer.topic, payload: Buffer.from(JSON.stringify(answer.reply)), qos: 1, retain: false, dup: false }))
      .catch((err: unknown) => { logger.error({ err, clientId }, 'could not answer a schedule request') })
  }

  let aedes: Aedes
  try {
    aedes = await Aedes.createBroker({
      id,
      mq,
      persistence,
      authorizePublish: createAuthorizePublish({
        journal,
        logger,
        tasks: () => tasks,
        delayed: () => delayed,
        maxDelaySeconds: resolved.delayed.maxDelaySeconds,
        isQos2Resend: (client, packet) => persistence.incomingGetPacket(client, packet).then(() => true, () => false)
      }),
      published (packet: AedesPublishPacket, client: Client | null, callback: (error?: Error | null) => void) {
        if (client !== null && packet.topic === PREFETCH_TOPIC) shared?.setPrefetch(client, toBuffer(packet.payload))
        if (client !== null && packet.topic === SCHEDULE_REQUEST_TOPIC && scheduler !== undefined) answerScheduleRequest(scheduler, client.id, toBuffer(packet.payload))
        // Stored for later by authorizePublish: nothing to route now.
        if (shared === undefined || isDelayedCarrier(packet)) {
          journal.settle(packet)
          callback(null)
          return
        }
        // The journal entry goes only once every group holds the message.
        shared.route(packet.topic, toBuffer(packet.payload), packet.qos).then(() => {
          journal.settle(packet)
          callback(null)
        }, (err: unknown) => {
          logger.error({ err, topic: packet.topic }, 'could not queue a message for shared subscriptions')
          callback(err as Error)
        })
      },
      authorizeSubscribe (_client: Client, sub: Subscription, callback: (error: Error | null, subscription?: Subscription | null) => void) {
        // `$delayed/...` is a command, never a topic anything is published to:
        // SUBACK 0x80, so no one sees delayed messages before their time.
        const share = isShareTopic(sub.topic) ? parseShareTopic(sub.topic) : null
        if (isDelayedTopic(typeof share === 'object' && share !== null ? share.filter : sub.topic)) {
          callback(null, null)
          return
        }
        if (!isShareTopic(sub.topic)) {
          callback(null, sub)
          return
        }
        if (shared === undefined) {
          callback(null, null)
          return
        }
        shared.prepare(sub.topic).then(
          // Groups deliver at QoS 0 or 1: a QoS 2 request is granted 1.
          () => callback(null, { ...sub, qos: sub.qos >= 1 ? 1 : 0 }),
          (err: unknown) => {
            logger.warn({ topic: sub.topic, err: (err as Error).message }, 'refused shared subscription')
            // SUBACK 0x80 for this filter [MQTT-3.9.3]: the connection stays up
            callback(null, null)
          })
      },
      authorizeForward: createForwarder(emitOrder, persistence)
    })
  } catch (err) {
    await persistence.destroy().catch(() => undefined)
    throw classifyOpenError(err, resolved)
  }

  const groupStore = new LevelGroupStore(persistence.store)
  try {
    tasks = await TaskGate.create({ schemas, store: persistence.store, logger, idempotencyWindowMs: resolved.tasks.idempotencyWindowMs })
    shared = await SharedSubscriptions.start(groupStore, resolved.shared, logger)
    // Dead letters are stored even before anyone subscribes to them, and so
    // are tasks submitted before their first worker: each known task type
    // has its default group, `$share/{type}/tasks/{type}` (docs/tasks.md).
    await shared.prepare(DEAD_LETTER_GROUP)
    for (const type of schemas.types()) await shared.prepare(taskShareFilter(type, type))
    const delayedStore = new DelayedStore(persistence.store)
    delayed = await DelayedMessages.start({
      store: delayedStore,
      clock,
      logger,
      maxPending: resolved.delayed.maxPending,
      publish: (m) => publishOn(aedes, { cmd: 'publish', topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, dup: false })
    })
    scheduler = await Scheduler.start({ store: persistence.store, delayedStore, delayed, schemas, clock, logger, fromConfig: resolved.schedules })
  } catch (err) {
    await scheduler?.close()
    await delayed?.close()
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    await tasks?.close()
    await persistence.destroy().catch(() => undefined)
    throw err
  }
  const groups = shared
  const gate = tasks
  const delayedMessages = delayed
  const schedules = scheduler
  persistence.setAckInterceptor((client, messageId) => groups.ack(client as Client, messageId))
  aedes.on('subscribe', (subs, client) => {
    for (const sub of subs) {
      if (isShareTopic(sub.topic) && (sub.qos as number) !== 128) groups.join(client, sub.topic, sub.qos)
    }
  })
  // Subscriptions restored with a persistent session emit no 'subscribe'.
  aedes.on('clientReady', (client) => {
    const subs = (client as Client & { subscriptions: Record<string, { qos: number }> }).subscriptions
    for (const topic in subs) {
      if (isShareTopic(topic)) groups.join(client, topic, subs[topic]?.qos ?? 0)
    }
  })
  aedes.on('unsubscribe', (topics, client) => {
    for (const topic of topics) groups.leave(client, topic)
  })
  aedes.on('clientDisconnect', (client) => { groups.leaveAll(client) })

  aedes.on('clientError', (client, err) => {
    logger.debug({ clientId: client.id, err: err.message }, 'client error')
  })
  aedes.on('connectionError', (_client, err) => {
    logger.debug({ err: err.message }, 'connection error')
  })

  let listener: TcpListener
  try {
    await journal.replay((packet) => publishOn(aedes, packet))
    listener = await listenTcp((socket) => { fixOverlappingSubscriptions(aedes.handle(socket)) }, resolved.port, resolved.host)
  } catch (err) {
    await schedules.close()
    await delayedMessages.close()
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    await groups.close()
    await gate.close()
    await persistence.destroy().catch(() => undefined)
    throw err
  }

  const broker = new Broker({ aedes, listener, persistence, shared: groups, tasks: gate, journal, delayed: delayedMessages, scheduler: schedules, logger })
  // Aedes emits 'error' for store failures; its typings do not list it.
  ;(aedes as unknown as EventEmitter).on('error', (err: Error) => {
    logger.error({ err }, 'broker error')
    broker.emit('error', err)
  })
  logger.info({ url: broker.url, persistence: resolved.persistence, dataDir: resolved.persistence === 'level' ? resolved.dataDir : undefined }, 'broker listening')
  return broker
}

function toBuffer (payload: string | Buffer): Buffer {
  return Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
}

function publishOn (aedes: Aedes, packet: PublishPacket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    aedes.publish(packet, (err?: Error) => { if (err) reject(err); else resolve() })
  })
}
