import type { Logger } from 'pino'
import { AdminError, ErrorCodes } from '../../protocol/errors.js'
import type { ListenerInfo } from '../listeners/index.js'
import type { ConnectedClients, Traffic } from '../mqtt/index.js'
import type { LogLevel } from '../options.js'
import type { LevelPersistence } from '../persistence/level-persistence.js'
import type { DelayedMessages } from '../scheduler/delayed-messages.js'
import type { Scheduler } from '../scheduler/scheduler.js'
import type { SharedSubscriptions } from '../shared/shared-subscriptions.js'
import type { TaskGate } from '../tasks/task-gate.js'
import type { PublishPacket } from '../types/mqtt.js'
import { FLEETQ_VERSION } from '../version.js'
import type {
  AdminApi, ClientView, DeadLetterView, GroupView, RequeueResult, RequeueSelection, RetainedView, ScheduleView,
  StatusView, SubmitResult, SubscriptionView
} from './admin-api.js'
import { ClientDirectory } from './clients.js'
import { DeadLetterAdmin } from './dead-letters.js'
import { GroupAdmin } from './groups.js'
import { RetainedMessages } from './retained.js'
import { TaskSubmission, type SubmitOptions } from './task-submission.js'

/** What the admin service reads and acts on: the broker's parts (broker/broker.ts BrokerParts). */
export interface AdminParts {
  /** The connected clients, as the adapter reads them (broker/mqtt/connected-clients.ts). */
  clients: ConnectedClients
  /** The broker's id (Aedes's). */
  id: string
  /** Publishes as the broker (no client): resolves once stored and routed. */
  publish: (packet: PublishPacket) => Promise<void>
  traffic: () => Readonly<Traffic>
  listeners: readonly ListenerInfo[]
  persistence: LevelPersistence
  shared: SharedSubscriptions
  tasks: Pick<TaskGate, 'inspect' | 'payloadIssues'>
  delayed: Pick<DelayedMessages, 'stats'>
  scheduler: Scheduler
  logger: Logger
  /** The task gate's `tasks.topicPrefix` and `tasks.deadLetterPrefix`. */
  taskTopicPrefix: string
  deadLetterPrefix: string
}

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

/**
 * The admin API (broker/admin/admin-api.ts) over a running broker: what
 * `/api/*`, the dashboard and `fleetq status|groups|dead|schedules` do
 * (docs/operations.md). Each concern is its own small class; this one
 * composes them and answers the broker-wide views.
 */
export class AdminService implements AdminApi {
  readonly #parts: AdminParts
  readonly #startedAt: number
  readonly #clients: ClientDirectory
  readonly #retained: RetainedMessages
  readonly #groups: GroupAdmin
  readonly #deadLetters: DeadLetterAdmin
  readonly #submission: TaskSubmission

  constructor (parts: AdminParts, startedAt = Date.now()) {
    this.#parts = parts
    this.#startedAt = startedAt
    this.#clients = new ClientDirectory(parts.clients, parts.shared)
    this.#retained = new RetainedMessages(parts.persistence, parts.publish)
    this.#groups = new GroupAdmin(parts.shared)
    this.#submission = new TaskSubmission(parts.tasks, parts.publish, parts.taskTopicPrefix, parts.logger)
    this.#deadLetters = new DeadLetterAdmin(parts.shared, this.#submission, parts.deadLetterPrefix, parts.logger)
  }

  status (): StatusView {
    const { clients, persistence, shared, scheduler, delayed, listeners } = this.#parts
    let queuedMessages = 0
    for (const size of persistence.queueSizes().values()) queuedMessages += size
    const groups = { count: 0, depth: 0, inflight: 0 }
    for (const group of shared.stats()) {
      groups.count++
      groups.depth += group.depth
      groups.inflight += group.inflight
    }
    const { messagesReceived, messagesSent, bytesReceived, bytesSent } = this.#parts.traffic()
    const memory = process.memoryUsage()
    const schedules = scheduler.stats()
    const now = Date.now()
    return {
      version: FLEETQ_VERSION,
      id: this.#parts.id,
      startedAt: new Date(this.#startedAt).toISOString(),
      uptimeSeconds: Math.floor((now - this.#startedAt) / 1000),
      connectedClients: clients.count,
      queuedMessages,
      // The store's in-memory count: no walk of the retained messages.
      retainedMessages: persistence.retainedCount,
      traffic: { messagesReceived, messagesSent, bytesReceived, bytesSent },
      memory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed },
      groups,
      deadLetters: this.#deadLetters.count(),
      schedules: { count: schedules.schedules, paused: schedules.paused },
      delayedPending: delayed.stats().pending,
      listeners: listeners.map(({ kind, host, port }) => ({ kind, host, port })),
      logLevel: this.logLevel()
    }
  }

  clients (): ClientView[] {
    return this.#clients.list()
  }

  client (clientId: string): ClientView {
    return this.#clients.get(clientId)
  }

  async disconnectClient (clientId: string): Promise<void> {
    await this.#clients.disconnect(clientId)
    this.#parts.logger.info({ clientId }, 'client disconnected through the admin API')
  }

  subscriptions (): SubscriptionView[] {
    return this.#clients.subscriptions()
  }

  retained (filter: string, limit: number): Promise<RetainedView[]> {
    return this.#retained.list(filter, checkLimit(limit))
  }

  deleteRetained (topic: string): Promise<void> {
    return this.#retained.delete(topic)
  }

  groups (): GroupView[] {
    return this.#groups.list()
  }

  group (key: string): GroupView {
    return this.#groups.get(key)
  }

  pauseGroup (key: string): Promise<GroupView> {
    return this.#groups.pause(key)
  }

  resumeGroup (key: string): Promise<GroupView> {
    return this.#groups.resume(key)
  }

  purgeGroup (key: string): Promise<{ purged: number }> {
    return this.#groups.purge(key)
  }

  deleteGroup (key: string): Promise<void> {
    return this.#groups.delete(key)
  }

  deadLetters (type: string | undefined, limit: number, options: { newest?: boolean } = {}): DeadLetterView[] {
    return this.#deadLetters.list(type, checkLimit(limit), options.newest === true)
  }

  deadLetter (id: string): DeadLetterView {
    return this.#deadLetters.get(id)
  }

  requeueDeadLetters (selection: RequeueSelection): Promise<RequeueResult> {
    return this.#deadLetters.requeue(selection)
  }

  deleteDeadLetter (id: string): Promise<void> {
    return this.#deadLetters.delete(id)
  }

  schedules (): ScheduleView[] {
    return this.#parts.scheduler.list()
  }

  schedule (name: string): ScheduleView {
    return this.#parts.scheduler.get(name)
  }

  pauseSchedule (name: string): Promise<ScheduleView> {
    return this.#parts.scheduler.pause(name)
  }

  resumeSchedule (name: string): Promise<ScheduleView> {
    return this.#parts.scheduler.resume(name)
  }

  triggerSchedule (name: string): Promise<ScheduleView> {
    return this.#parts.scheduler.trigger(name)
  }

  removeSchedule (name: string): Promise<void> {
    return this.#parts.scheduler.remove(name)
  }

  upsertSchedule (input: unknown): Promise<ScheduleView> {
    return this.#parts.scheduler.upsert(input, 'api')
  }

  submitTask (type: string, body: unknown, options: SubmitOptions): Promise<SubmitResult> {
    return this.#submission.submit(type, body, options ?? {})
  }

  logLevel (): LogLevel {
    return this.#parts.logger.level as LogLevel
  }

  /** The broker logs through one root logger (no child loggers, broker/logger.ts): setting its level sets every log line's. */
  setLogLevel (level: LogLevel): void {
    if (!LOG_LEVELS.includes(level)) {
      throw new AdminError(ErrorCodes.REQUEST_INVALID, `level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(level)}`,
        { issues: [{ path: '/level', message: `must be one of ${LOG_LEVELS.join(', ')}`, keyword: 'enum' }] })
    }
    // Said before the change, so it is seen at the level the operator was reading.
    this.#parts.logger.info({ from: this.#parts.logger.level, to: level }, 'log level set through the admin API')
    this.#parts.logger.level = level
  }
}

function checkLimit (limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) {
    throw new AdminError(ErrorCodes.REQUEST_INVALID, `limit must be an integer from 1 to 1000, got ${JSON.stringify(limit)}`,
      { issues: [{ path: '/limit', message: 'must be an integer from 1 to 1000', keyword: 'maximum' }] })
  }
  return limit
}
