/**
 * The admin API's operations and the JSON they answer with: what the HTTP
 * admin endpoints (broker/http/), the dashboard and `fleetq status|groups|dead|schedules`
 * share (docs/operations.md). Every method either resolves with plain JSON
 * data or rejects with an AdminError or ScheduleError (protocol/errors.ts),
 * which the HTTP layer answers as problem+json.
 */
import type { ValidationIssue } from '../../protocol/errors.js'
import type { ScheduleInfo } from '../../protocol/schedules.js'
import type { GroupCounters, MemberStats } from '../shared/shared-group.js'
import type { LogLevel } from '../options.js'

/** `GET /api/status`: one look at the whole broker (the dashboard's overview, `fleetq status`). */
export interface StatusView {
  version: string
  /** Broker id (Aedes's). */
  id: string
  startedAt: string
  uptimeSeconds: number
  connectedClients: number
  /** Messages waiting for offline persistent-session clients, in all. */
  queuedMessages: number
  retainedMessages: number
  /** PUBLISH packets and payload bytes in and out since start. */
  traffic: { messagesReceived: number, messagesSent: number, bytesReceived: number, bytesSent: number }
  memory: { rssBytes: number, heapUsedBytes: number }
  groups: { count: number, depth: number, inflight: number }
  deadLetters: number
  schedules: { count: number, paused: number }
  delayedPending: number
  listeners: Array<{ kind: string, host: string, port: number }>
  logLevel: LogLevel
}

/** `GET /api/clients`, `GET /api/clients/{clientId}`. */
export interface ClientView {
  clientId: string
  username: string | null
  /** Remote address and port as the socket saw it. */
  address: string | null
  connectedAt: string
  keepaliveSeconds: number
  cleanSession: boolean
  /** Its subscriptions, shared ones as `$share/{group}/{filter}`. */
  subscriptions: SubscriptionView[]
}

/** `GET /api/subscriptions`: every subscription of every connected client. */
export interface SubscriptionView {
  clientId: string
  topic: string
  qos: number
}

/** `GET /api/retained?filter=...&limit=...`. */
export interface RetainedView {
  topic: string
  qos: number
  bytes: number
  /** The payload as text when it is UTF-8, else null (then `payloadBase64`). Cut at 64 KiB. */
  payload: string | null
  payloadBase64?: string
  truncated?: true
}

/** `GET /api/groups`, `GET /api/groups/{key}`: a shared group, addressed by `key` (URL-encoded). */
export interface GroupView {
  key: string
  group: string
  filter: string
  strategy: string
  /** Paused: messages are kept but none is sent to members. */
  paused: boolean
  depth: number
  inflight: number
  /** Age of the oldest waiting message, null when none waits. */
  oldestAgeMs: number | null
  members: MemberStats[]
  counters: GroupCounters
  createdAt: string
}

/** `GET /api/dead-letters?type=...&limit=...`: one stored dead letter, oldest first. */
export interface DeadLetterView {
  /** Stable while it is stored: what requeue and delete take. */
  id: string
  /** `$fleetq/dead/{type}`. */
  topic: string
  taskType: string
  /** `validation`, `unknown-type`, `delay-invalid` (the broker), `max-attempts`, `unrecoverable`... (workers). */
  reason: string
  /** The worker's last error, when a worker dead-lettered it. */
  error: string | null
  attempts: number | null
  issues: ValidationIssue[]
  /** The task envelope when it can be recovered, else null. */
  task: unknown
  /** The original submission as text (gate dead letters), when there was one. */
  payload: string | null
  deadAt: string | null
  /** The whole record as stored, parsed. */
  record: unknown
}

/** `POST /api/dead-letters/requeue`: which ones. Exactly one of `ids`, `type` and `all`. */
export interface RequeueSelection {
  ids?: string[]
  type?: string
  all?: true
}

/** What a requeue did: each one was submitted again as attempt 1 through the task gate. */
export interface RequeueResult {
  requeued: number
  /** Dead letters with no task to requeue (a gate dead letter without a kept payload); they stay stored. */
  skipped: Array<{ id: string, reason: string }>
}

/** `GET /api/schedules`: ScheduleInfo and whether it is paused. */
export type ScheduleView = ScheduleInfo & { paused: boolean }

/** `POST /api/tasks/{type}`: the task was accepted by the task gate. */
export interface SubmitResult {
  id: string
  type: string
  topic: string
}

/** The operations behind `/api/*`. Mutations are marked: only the admin role may call them. */
export interface AdminApi {
  status (): StatusView

  clients (): ClientView[]
  /** FLEETQ_CLIENT_NOT_FOUND unless connected. */
  client (clientId: string): ClientView
  /** Mutation. Closes its connection (a persistent session stays stored). FLEETQ_CLIENT_NOT_FOUND unless connected. */
  disconnectClient (clientId: string): Promise<void>
  subscriptions (): SubscriptionView[]

  /** At most `limit` (1..1000), topics matching `filter` (default `#`), in topic order. */
  retained (filter: string, limit: number): Promise<RetainedView[]>
  /** Mutation. FLEETQ_RETAINED_NOT_FOUND if the topic has no retained message. */
  deleteRetained (topic: string): Promise<void>

  groups (): GroupView[]
  /** FLEETQ_GROUP_NOT_FOUND. */
  group (key: string): GroupView
  /** Mutation. Durable: a paused group stays paused across restarts. */
  pauseGroup (key: string): Promise<GroupView>
  /** Mutation. */
  resumeGroup (key: string): Promise<GroupView>
  /** Mutation. Drops every waiting message (not those in flight); resolves with how many. */
  purgeGroup (key: string): Promise<{ purged: number }>
  /** Mutation. FLEETQ_GROUP_HAS_MEMBERS while members are subscribed. */
  deleteGroup (key: string): Promise<void>

  /**
   * Stored dead letters, oldest first; `type` narrows to one task type; at
   * most `limit` (1..1000): the oldest ones, or with `newest` the newest ones
   * (still listed oldest first).
   */
  deadLetters (type: string | undefined, limit: number, options?: { newest?: boolean }): DeadLetterView[]
  /** FLEETQ_DEAD_LETTER_NOT_FOUND. */
  deadLetter (id: string): DeadLetterView
  /** Mutation. FLEETQ_REQUEST_INVALID for a selection that is not exactly one of ids/type/all. */
  requeueDeadLetters (selection: RequeueSelection): Promise<RequeueResult>
  /** Mutation. FLEETQ_DEAD_LETTER_NOT_FOUND. */
  deleteDeadLetter (id: string): Promise<void>

  schedules (): ScheduleView[]
  /** FLEETQ_SCHEDULE_NOT_FOUND. */
  schedule (name: string): ScheduleView
  /** Mutation. Durable across restarts: a paused schedule fires no tick (missed ones are skipped on resume). */
  pauseSchedule (name: string): Promise<ScheduleView>
  /** Mutation. */
  resumeSchedule (name: string): Promise<ScheduleView>
  /** Mutation. Publishes (or submits) its message now, once; the cron timetable is unchanged. */
  triggerSchedule (name: string): Promise<ScheduleView>
  /** Mutation. */
  removeSchedule (name: string): Promise<void>
  /** Mutation. Creates or replaces one (body as `ScheduleInput`); ScheduleError when refused. */
  upsertSchedule (input: unknown): Promise<ScheduleView>

  /**
   * Mutation. Submits a task as the broker (producer `admin`): `body` is the
   * payload alone, checked against the type's schema. FLEETQ_UNKNOWN_TASK_TYPE
   * and FLEETQ_REQUEST_INVALID (with issues) are refused with nothing sent.
   */
  submitTask (type: string, body: unknown, options: { maxAttempts?: number, timeoutMs?: number, idempotencyKey?: string }): Promise<SubmitResult>

  logLevel (): LogLevel
  /** Mutation. Every logger of the broker, from now on. */
  setLogLevel (level: LogLevel): void
}
