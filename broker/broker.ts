import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import type { ScheduleInfo, ScheduleInput } from '../protocol/schedules.js'
import { DEAD_LETTER_PREFIX, TASKS_PREFIX } from '../protocol/topics.js'
import type { AdminApi } from './admin/admin-api.js'
import { AdminService } from './admin/admin-service.js'
import type { Closers } from './closers.js'
import type { ListenerInfo } from './listeners/index.js'
import type { TcpListener } from './listeners/tcp.js'
import { ConnectedClients, type AccessPolicy, type Aedes, type AedesPublishPacket, type FaultProbe, type MqttAdapter, type Traffic } from './mqtt/index.js'
import type { SessionStats } from './mqtt/adapter.js'
import type { LevelPersistence } from './persistence/level-persistence.js'
import type { DelayedMessages, DelayedStats } from './scheduler/delayed-messages.js'
import type { Scheduler, SchedulerStats } from './scheduler/scheduler.js'
import type { Authenticator, AuthStats } from './security/authenticator.js'
import type { LimitCounters, LimitStats } from './security/limit-counters.js'
import type { AccessStats, TopicAccess } from './security/topic-access.js'
import type { GroupStats } from './shared/shared-group.js'
import type { SharedSubscriptions } from './shared/shared-subscriptions.js'
import type { TaskGate, TaskGateStats } from './tasks/task-gate.js'

export interface BrokerEvents {
  /** The oldest message queued for `clientId` was dropped (counted, also across a restart): its queue was at `maxQueuedPerClient` (docs/durability.md). */
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
  /**
   * Exceptions caught inside the broker's MQTT hooks since start: each
   * refused one packet or client, was logged, and the broker went on
   * (docs/mqtt-adapter.md).
   */
  hookErrors: number
  /**
   * Connections closed since start for what their client sent or failed to
   * send: malformed packets, refused publishes, keep-alive and CONNECT
   * timeouts (each logged once, docs/security.md#hostile-input).
   */
  clientErrors: number
  /** PUBLISH packets and payload bytes from and to clients since start (group deliveries included). */
  traffic: Traffic
  /** Subscriptions, clients at most and in all, retained messages: counted when read (docs/operations.md). */
  sessions: SessionStats
  /** CONNECTs accepted and refused by authentication since start (docs/security.md). */
  auth: AuthStats
  /** Publishes, subscriptions and deliveries refused by the ACLs since start (docs/security.md). */
  access: AccessStats
  /** How many times each limit of `limits.*` was hit since start (docs/security.md). */
  limits: LimitStats
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

/**
 * @internal The second argument of createBroker(): hook points not in
 * BrokerOptions (yet). `access` is where the authentication and ACL work
 * plugs in (broker/mqtt/access.ts); `faults` is the fault probe of the
 * hook-guard tests (test/hostile-input.test.ts).
 */
export interface BrokerInternals {
  access?: AccessPolicy
  faults?: FaultProbe
}

/** @internal what createBroker() hands the Broker. */
export interface BrokerParts {
  mqtt: MqttAdapter
  listener: TcpListener
  /** Every listener, the TCP one first. */
  listeners: ListenerInfo[]
  persistence: LevelPersistence
  shared: SharedSubscriptions
  tasks: TaskGate
  delayed: DelayedMessages
  scheduler: Scheduler
  /** The CONNECT check against the users file (broker/security/). */
  auth: Authenticator
  topicAccess: TopicAccess
  limits: LimitCounters
  logger: Logger
  /** Everything createBroker() opened, in the order it closes (broker/closers.ts). */
  closers: Closers
  /**
   * The task gate's topic prefixes (`tasks.topicPrefix`, `tasks.deadLetterPrefix`),
   * for the admin API's task submissions and dead letters.
   * @defaultValue the defaults, `tasks/` and `$fleetq/dead/`
   */
  taskTopics?: { topicPrefix?: string, deadLetterPrefix?: string }
  /** When the broker started (epoch ms), for the admin API's uptime. @defaultValue when the Broker was made */
  startedAt?: number
}

/** A running fleetq broker. Create it with {@link createBroker}. */
export class Broker extends EventEmitter<BrokerEvents> {
  /** The Aedes instance, for advanced use (hooks, events). */
  readonly aedes: Aedes
  readonly logger: Logger
  /** Periodic schedules: upsert, list, get, remove (docs/scheduling.md). */
  readonly schedules: BrokerSchedules
  /**
   * The admin API's operations (broker/admin/admin-api.ts): clients, retained
   * messages, groups, dead letters, schedules, task submission, log level;
   * what the HTTP admin API, the dashboard and the `fleetq` admin commands use
   * (docs/operations.md).
   */
  readonly admin: AdminApi
  readonly #parts: BrokerParts
  #closing: Promise<void> | null = null

  /** @internal use {@link createBroker} */
  constructor (parts: BrokerParts) {
    super()
    this.#parts = parts
    this.aedes = parts.mqtt.aedes
    this.logger = parts.logger
    const { scheduler } = parts
    this.schedules = {
      upsert: (schedule) => scheduler.upsert(schedule, 'api'),
      list: () => scheduler.list(),
      get: (name) => scheduler.get(name),
      remove: (name) => scheduler.remove(name)
    }
    const { mqtt } = parts
    this.admin = new AdminService({
      clients: new ConnectedClients(this.aedes, parts.startedAt ?? Date.now()),
      id: this.aedes.id,
      publish: (packet) => mqtt.publish(packet),
      traffic: () => mqtt.traffic,
      listeners: parts.listeners,
      persistence: parts.persistence,
      shared: parts.shared,
      tasks: parts.tasks,
      delayed: parts.delayed,
      scheduler,
      logger: parts.logger,
      taskTopicPrefix: parts.taskTopics?.topicPrefix ?? TASKS_PREFIX,
      deadLetterPrefix: parts.taskTopics?.deadLetterPrefix ?? DEAD_LETTER_PREFIX
    }, parts.startedAt)
    parts.persistence.on('queue-overflow', (clientId, topic) => this.emit('queue-overflow', clientId, topic))
    // Only to listeners: an 'error' no one listens to would throw, from inside Aedes.
    parts.mqtt.onError((err) => { if (this.listenerCount('error') > 0) this.emit('error', err) })
  }

  /** The bound TCP port (useful with `port: 0`). */
  get port (): number {
    return this.#parts.listener.address.port
  }

  get host (): string {
    return this.#parts.listener.address.address
  }

  /**
   * Every listener with its bound address and port (the real one with port
   * 0): `mqtt` (TCP) first, then `mqtts`, `ws` and `wss` as configured.
   * (Not `listeners`: EventEmitter has that name.)
   */
  get endpoints (): readonly ListenerInfo[] {
    return this.#parts.listeners
  }

  /** `mqtt://host:port` of the TCP listener. */
  get url (): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host
    return `mqtt://${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${this.port}`
  }

  stats (): BrokerStats {
    const { persistence, shared, tasks, delayed, scheduler, mqtt } = this.#parts
    return {
      connectedClients: this.aedes.connectedClients,
      droppedMessages: persistence.droppedMessages,
      queuedMessages: Object.fromEntries(persistence.queueSizes()),
      sharedGroups: shared.stats(),
      tasks: tasks.stats(),
      delayed: delayed.stats(),
      scheduler: scheduler.stats(),
      hookErrors: mqtt.hookErrors,
      clientErrors: mqtt.clientErrors,
      traffic: mqtt.traffic,
      sessions: mqtt.sessionStats(),
      auth: this.#parts.auth.stats(),
      access: { ...this.#parts.topicAccess.stats(), receiveDenied: mqtt.withheldDeliveries },
      limits: this.#parts.limits.stats()
    }
  }

  /**
   * Reads the users file (`auth.usersFile`) and the ACL file
   * (`auth.aclFile`) again, as SIGHUP does for `fleetq broker`. Connections
   * already accepted stay; every later publish, subscription and delivery is
   * checked against the new rules. A file that cannot be used is logged and
   * rejects with a ConfigError, and what it held before stays in force.
   */
  async reloadAuth (): Promise<void> {
    // Both, even when the first fails; the first failure is reported.
    const results = await Promise.allSettled([this.#parts.auth.reload(), this.#parts.topicAccess.reload()])
    for (const result of results) if (result.status === 'rejected') throw result.reason
  }

  /**
   * Deletes a shared-subscription group and its queued messages. Fails with
   * FLEETQ_GROUP_HAS_MEMBERS while members are subscribed.
   */
  async deleteSharedGroup (group: string, filter: string): Promise<void> {
    await this.#parts.shared.deleteGroup(group, filter)
  }

  /** Publishes a message from the broker itself (no client). Resolves once it is stored and routed. */
  async publish (packet: Omit<AedesPublishPacket, 'cmd' | 'dup' | 'retain' | 'qos'> & Partial<Pick<AedesPublishPacket, 'qos' | 'retain'>>): Promise<void> {
    await this.#parts.mqtt.publish({ cmd: 'publish', dup: false, qos: 0, retain: false, ...packet })
  }

  /**
   * Stops accepting connections, disconnects clients, writes out and closes
   * the store. Safe to call more than once; every step runs even if one fails.
   */
  close (): Promise<void> {
    this.#closing ??= this.#parts.closers.close().then((failures) => {
      this.logger.info('broker closed')
      if (failures.length > 0) throw new AggregateError(failures, 'broker did not close cleanly')
    })
    return this.#closing
  }
}
