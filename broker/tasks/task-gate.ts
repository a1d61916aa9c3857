import type { Logger } from 'pino'
import { buildEnvelope, envelopeDefaults } from '../../protocol/envelope.js'
import { ConfigError, type ValidationIssue } from '../../protocol/errors.js'
import type { TaskEnvelope } from '../../protocol/generated/task-types.js'
import type { TaskSchemas } from '../../protocol/schema-registry.js'
import { DEAD_LETTER_PREFIX, deadLetterTopic, DUPLICATES_PREFIX, isTopicLevel, parseTaskTopic, RESULTS_PREFIX, TASKS_PREFIX } from '../../protocol/topics.js'
import { configDefaults } from '../generated/config-types.js'
import type { GateDeadLetterReason } from '../../protocol/messages.js'
import type { LimitCounters } from '../security/limit-counters.js'
import { parseUntrustedJson } from '../untrusted-json.js'
import { deadLetterRecord } from './dead-letter.js'
import { IdempotencyKeys, type IdempotencyStore } from './idempotency-keys.js'
import { TaskOutcomes, type OutcomeCounts } from './task-outcomes.js'

export interface TaskGateOptions {
  /** The schemas submissions are checked against (the same ones `submit()` uses). */
  schemas: TaskSchemas
  /** Where idempotency keys are kept across restarts. */
  store: IdempotencyStore
  logger: Logger
  /** Topics `{topicPrefix}{type}` are task submissions. @defaultValue 'tasks/' */
  topicPrefix?: string
  /** Refused submissions go to `{deadLetterPrefix}{type}`. @defaultValue '$fleetq/dead/' */
  deadLetterPrefix?: string
  /** Duplicates go to `{duplicatePrefix}{type}`, which nothing subscribes to. @defaultValue '$fleetq/duplicates/' */
  duplicatePrefix?: string
  /**
   * How long a submission's idempotency key makes later ones with the same
   * key (and type) duplicates. 0 turns the check off.
   * @defaultValue 86400000 (24 h)
   */
  idempotencyWindowMs?: number
  /** Most keys remembered; beyond it the oldest are forgotten early (counted in `stats().keysEvicted`). @defaultValue 100000 */
  maxIdempotencyKeys?: number
  /** `maxAttempts` of an envelope the broker wraps around a bare payload. @defaultValue 3 */
  wrapMaxAttempts?: number
  /** `timeoutMs` of an envelope the broker wraps around a bare payload. @defaultValue 60000 */
  wrapTimeoutMs?: number
  /** Deepest nesting of arrays and objects in a submission (`tasks.maxJsonDepth`). @defaultValue 64 */
  maxJsonDepth?: number
  /** Where a submission over `maxJsonDepth` or the size bound is counted (`stats().limits`). */
  limits?: Pick<LimitCounters, 'hit'>
}

export const taskGateDefaults = Object.freeze({
  topicPrefix: TASKS_PREFIX,
  deadLetterPrefix: DEAD_LETTER_PREFIX,
  duplicatePrefix: DUPLICATES_PREFIX,
  // Broker settings: their defaults are schemas/broker-config.schema.json's (docs/configuration.md).
  idempotencyWindowMs: configDefaults.tasks.idempotencyWindowMs,
  maxIdempotencyKeys: configDefaults.tasks.maxIdempotencyKeys,
  wrapMaxAttempts: envelopeDefaults.maxAttempts,
  wrapTimeoutMs: envelopeDefaults.timeoutMs,
  maxJsonDepth: configDefaults.tasks.maxJsonDepth
})

/** The fields of a PUBLISH the gate reads and may rewrite (Aedes's packet fits). */
export interface GatePacket {
  topic: string
  payload: Buffer | string
  qos: number
  retain?: boolean
}

export type GateAction = 'pass' | 'wrapped' | 'dead-lettered' | 'duplicate'

export interface GateDecision {
  /**
   * `pass`: not a task topic, or a valid envelope, unchanged. `wrapped`: a
   * valid bare payload, now inside an envelope. `dead-lettered`: refused,
   * rewritten to the dead-letter topic. `duplicate`: idempotency key seen
   * within the window, rewritten to the duplicates topic.
   */
  action: GateAction
  /** Why it was dead-lettered. */
  issues?: ValidationIssue[]
  /** The task's id; for a duplicate, the id of the task it duplicates. */
  taskId?: string
  /**
   * Present when the submission claimed an idempotency key: call `commit()`
   * once the message is journaled (before the PUBACK) to store the key, or
   * `release()` if the publish is refused after all.
   */
  commit?: () => Promise<void>
  release?: () => void
}

export interface TaskGateStats {
  /** Submissions let through to workers: valid envelopes and wrapped payloads. */
  accepted: number
  /** Of `accepted`, the bare payloads the broker wrapped. */
  wrapped: number
  /** Submissions dead-lettered: invalid, not JSON, too large, or of an unknown type. */
  invalid: number
  /** Submissions dropped as duplicates of an idempotency key. */
  duplicates: number
  /** Idempotency keys remembered now. */
  idempotencyKeys: number
  /** Keys forgotten before their window ended, to stay within `maxIdempotencyKeys`. */
  keysEvicted: number
  /**
   * Outcomes by task type: known types (those with schemas), then `other`
   * (broker/tasks/task-outcomes.ts says what each counts).
   */
  byType: Record<string, OutcomeCounts>
}

/**
 * Bytes a published message may have beyond `maxPayloadBytes`, for the
 * envelope around the payload; larger messages are refused without parsing.
 */
const ENVELOPE_ALLOWANCE = 64 * 1024

const CHECKED_ENVELOPE = Symbol('fleetq.checkedEnvelope')

/**
 * Whether the gate let this packet through as a task envelope it parsed: a
 * JSON object with string `id` and `type` and no `deliveryCount`. The shared
 * groups then add the delivery count without parsing it again
 * (broker/shared/delivery-count.ts).
 */
export function isCheckedEnvelope (packet: object): boolean {
  return (packet as { [CHECKED_ENVELOPE]?: true })[CHECKED_ENVELOPE] === true
}

function markChecked (packet: GatePacket, envelope: object): void {
  if (!('deliveryCount' in envelope)) (packet as GatePacket & { [CHECKED_ENVELOPE]?: true })[CHECKED_ENVELOPE] = true
}

type ResolvedGateOptions = Required<Omit<TaskGateOptions, 'schemas' | 'store' | 'logger' | 'limits'>>

/**
 * The broker's trust boundary for tasks (docs/tasks.md). Devices publish with
 * plain MQTT clients, so the broker checks every message on `tasks/{type}`
 * before any worker sees it: a bare payload is wrapped in an envelope, an
 * invalid one becomes a dead letter, a repeated idempotency key a duplicate.
 *
 * It works on the packet in Aedes's `authorizePublish`, which Aedes then
 * publishes as it is: rewriting its topic and payload is how a refused task
 * is stored as a dead letter and still acknowledged, so a device does not
 * resend it forever.
 */
export class TaskGate {
  readonly #schemas: TaskSchemas
  readonly #keys: IdempotencyKeys | null
  readonly #logger: Logger
  readonly #options: ResolvedGateOptions
  readonly #counters = { accepted: 0, wrapped: 0, invalid: 0, duplicates: 0 }
  readonly #limits: Pick<LimitCounters, 'hit'> | undefined
  readonly #outcomes: TaskOutcomes
  #closing: Promise<void> | null = null

  private constructor (schemas: TaskSchemas, keys: IdempotencyKeys | null, logger: Logger, options: ResolvedGateOptions, limits: Pick<LimitCounters, 'hit'> | undefined) {
    this.#schemas = schemas
    this.#keys = keys
    this.#logger = logger
    this.#options = options
    this.#limits = limits
    this.#outcomes = new TaskOutcomes({ types: schemas.types(), deadLetterPrefix: options.deadLetterPrefix })
  }

  /** Checks the options and loads the unexpired idempotency keys from the store. */
  static async create (options: TaskGateOptions): Promise<TaskGate> {
    const resolved: ResolvedGateOptions = {
      topicPrefix: options.topicPrefix ?? taskGateDefaults.topicPrefix,
      deadLetterPrefix: options.deadLetterPrefix ?? taskGateDefaults.deadLetterPrefix,
      duplicatePrefix: options.duplicatePrefix ?? taskGateDefaults.duplicatePrefix,
      idempotencyWindowMs: options.idempotencyWindowMs ?? taskGateDefaults.idempotencyWindowMs,
      maxIdempotencyKeys: options.maxIdempotencyKeys ?? taskGateDefaults.maxIdempotencyKeys,
      wrapMaxAttempts: options.wrapMaxAttempts ?? taskGateDefaults.wrapMaxAttempts,
      wrapTimeoutMs: options.wrapTimeoutMs ?? taskGateDefaults.wrapTimeoutMs,
      maxJsonDepth: options.maxJsonDepth ?? taskGateDefaults.maxJsonDepth
    }
    for (const key of ['topicPrefix', 'deadLetterPrefix', 'duplicatePrefix'] as const) {
      const prefix = resolved[key]
      if (!prefix.endsWith('/') || /[+#]/.test(prefix)) throw new ConfigError(`tasks.${key}`, `must end with "/" and have no wildcards, got "${prefix}"`)
    }
    for (const key of ['idempotencyWindowMs', 'maxIdempotencyKeys', 'wrapMaxAttempts', 'wrapTimeoutMs', 'maxJsonDepth'] as const) {
      const value = resolved[key]
      const min = key === 'idempotencyWindowMs' ? 0 : 1
      if (!Number.isSafeInteger(value) || value < min) throw new ConfigError(`tasks.${key}`, `must be an integer >= ${min}, got ${String(value)}`)
    }
    const keys = resolved.idempotencyWindowMs === 0
      ? null
      : await IdempotencyKeys.open(options.store, resolved.idempotencyWindowMs, resolved.maxIdempotencyKeys, options.logger)
    return new TaskGate(options.schemas, keys, options.logger, resolved, options.limits)
  }

  /**
   * Checks one PUBLISH and rewrites `packet` in place as decided. Synchronous,
   * so two copies of a submission in one tick cannot both pass.
   */
  inspect (packet: GatePacket, clientId: string | null): GateDecision {
    const type = parseTaskTopic(packet.topic, this.#options.topicPrefix)
    if (type === null) return { action: 'pass' }
    const raw = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)

    if (!this.#schemas.has(type) && !this.#schemas.allowUnknownTypes) {
      return this.#deadLetter(packet, 'unknown-type', type, clientId, raw,
        [{ path: '', message: `no schema is registered for task type "${type}"`, keyword: 'taskType' }])
    }
    const limit = this.#schemas.maxPayloadBytes + ENVELOPE_ALLOWANCE
    if (raw.length > limit) {
      return this.#deadLetter(packet, 'validation', type, clientId, raw,
        [{ path: '', message: `must be at most ${limit} bytes, got ${raw.length}`, keyword: 'maxBytes' }])
    }
    const parsed = parseUntrustedJson(raw, this.#options.maxJsonDepth)
    if (!parsed.ok) return this.#deadLetter(packet, 'validation', type, clientId, raw, [parsed.issue])

    if (isEnvelope(parsed.value, type)) {
      const issues = [
        ...this.#schemas.validateEnvelope(parsed.value),
        ...this.#schemas.validatePayload(type, parsed.value['payload'], raw.length).map((i) => ({ ...i, path: `/payload${i.path}` }))
      ]
      if (issues.length > 0) return this.#deadLetter(packet, 'validation', type, clientId, raw, issues)
      const envelope = parsed.value as unknown as TaskEnvelope
      const impersonation = impersonationIssue(envelope, clientId)
      if (impersonation !== null) return this.#deadLetter(packet, 'validation', type, clientId, raw, [impersonation])
      return this.#accept(packet, type, envelope)
    }

    const issues = this.#schemas.validatePayload(type, parsed.value, raw.length)
    if (issues.length > 0) return this.#deadLetter(packet, 'validation', type, clientId, raw, issues)
    const envelope = this.#wrap(type, parsed.value, clientId)
    // Only a type the envelope cannot carry (allowed unknown, badly named) fails here.
    const envelopeIssues = this.#schemas.validateEnvelope(envelope)
    if (envelopeIssues.length > 0) return this.#deadLetter(packet, 'validation', type, clientId, raw, envelopeIssues)
    packet.payload = Buffer.from(JSON.stringify(envelope))
    markChecked(packet, envelope)
    this.#counters.accepted++
    this.#counters.wrapped++
    this.#accepted(type, envelope)
    return { action: 'wrapped', taskId: envelope.id }
  }

  /**
   * What inspect() would refuse in a payload of `type`, without counting,
   * logging or rewriting anything: null for a type with no schema (unless
   * unknown types are allowed). The admin API asks before it publishes, so an
   * operator's typo is answered, not dead-lettered.
   */
  payloadIssues (type: string, payload: unknown): ValidationIssue[] | null {
    if (!this.#schemas.has(type)) return this.#schemas.allowUnknownTypes ? [] : null
    return this.#schemas.validatePayload(type, payload)
  }

  stats (): TaskGateStats {
    return {
      ...this.#counters,
      idempotencyKeys: this.#keys?.size ?? 0,
      keysEvicted: this.#keys?.evicted ?? 0,
      byType: this.#outcomes.stats()
    }
  }

  /**
   * Every PUBLISH once stored (Aedes's `published`): counts the dead letters
   * and task results among them, by type. Cheap for other messages.
   */
  published (topic: string, payload: Buffer | string): void {
    this.#outcomes.published(topic, payload)
  }

  /** Waits for idempotency-key writes in progress. Safe to call more than once. */
  close (): Promise<void> {
    this.#closing ??= this.#keys?.flush() ?? Promise.resolve()
    return this.#closing
  }


  #accept (packet: GatePacket, type: string, envelope: TaskEnvelope): GateDecision {
    if (envelope.idempotencyKey === undefined || this.#keys === null) {
      markChecked(packet, envelope)
      this.#counters.accepted++
      this.#accepted(type, envelope)
      return { action: 'pass', taskId: envelope.id }
    }
    const claim = this.#keys.claim(type, envelope.idempotencyKey, envelope.id)
    if (claim.duplicate) {
      // Acknowledged and dropped: the publisher sees success, as it should
      // for a submission that already went through.
      packet.topic = `${this.#options.duplicatePrefix}${type}`
      packet.retain = false
      this.#counters.duplicates++
      this.#outcomes.count(type, 'duplicate')
      this.#logger.debug({ type, taskId: envelope.id, duplicateOf: claim.taskId, idempotencyKey: envelope.idempotencyKey }, 'duplicate task submission dropped')
      return { action: 'duplicate', taskId: claim.taskId }
    }
    markChecked(packet, envelope)
    this.#counters.accepted++
    this.#accepted(type, envelope)
    return { action: 'pass', taskId: envelope.id, commit: claim.commit, release: claim.release }
  }

  /** A first attempt is a submission, a later one a retry (the worker republishes a failed task with `attempt` + 1, docs/tasks.md). */
  #accepted (type: string, envelope: TaskEnvelope): void {
    this.#outcomes.count(type, envelope.attempt > 1 ? 'retried' : 'submitted')
    if (envelope.replyTo !== undefined) this.#outcomes.awaitResult(envelope.id, type)
  }

  #wrap (type: string, payload: unknown, clientId: string | null): TaskEnvelope {
    // A device that subscribes to $fleetq/results/{its id}/+ gets results too.
    return buildEnvelope({ type, payload, producer: clientId, maxAttempts: this.#options.wrapMaxAttempts, timeoutMs: this.#options.wrapTimeoutMs })
  }

  #deadLetter (packet: GatePacket, reason: GateDeadLetterReason, type: string, clientId: string | null, raw: Buffer, issues: ValidationIssue[]): GateDecision {
    // The size and depth bounds are limits too (`stats().limits`), wherever they were found.
    const offender = clientId ?? 'broker'
    if (issues.some((i) => i.keyword === 'maxBytes')) this.#limits?.hit('maxPayloadBytes', offender, { type, bytes: raw.length })
    if (issues.some((i) => i.keyword === 'maxDepth')) this.#limits?.hit('maxJsonDepth', offender, { type, max: this.#options.maxJsonDepth })
    const record = deadLetterRecord(reason, type, packet.topic, clientId, issues, raw)
    packet.topic = deadLetterTopic(type, this.#options.deadLetterPrefix)
    packet.payload = Buffer.from(JSON.stringify(record))
    // A dead letter is a record of one event, not state for late subscribers.
    packet.retain = false
    this.#counters.invalid++
    this.#outcomes.count(type, 'invalid')
    this.#logger.warn({ type, clientId, reason, issues: issues.slice(0, 10) }, 'task submission dead-lettered')
    return { action: 'dead-lettered', issues }
  }
}

/**
 * A client's envelope must not speak for another client (docs/security.md):
 * a first attempt names its publisher as `producer`, and results go only to
 * the producer's own result topic, so no client can have tasks run in
 * another's name or results sent where another reads them. A retry (attempt
 * 2 and on) is published by the worker and keeps the producer it had. The
 * broker's own publishes (schedules, delayed messages due) are not asked.
 */
function impersonationIssue (envelope: TaskEnvelope, clientId: string | null): ValidationIssue | null {
  if (clientId === null) return null
  const producer = envelope.producer
  if (envelope.attempt <= 1 && producer !== undefined && producer !== clientId) {
    return { path: '/producer', message: `must be the publishing client's id "${clientId}" on a first attempt, got "${producer}"`, keyword: 'producer' }
  }
  const owner = producer ?? clientId
  // Only a client id that is one topic level owns result topics: under
  // `$fleetq/results/a/b/` the owner is `a` (broker/security/topic-access.ts).
  if (envelope.replyTo !== undefined && (!isTopicLevel(owner) || !envelope.replyTo.startsWith(`${RESULTS_PREFIX}${owner}/`))) {
    return { path: '/replyTo', message: `must be under ${RESULTS_PREFIX}${owner}/, the producer's own result topics, and the producer one topic level`, keyword: 'replyTo' }
  }
  return null
}

/** A full envelope (from the client library or a retry), as opposed to a bare payload. */
function isEnvelope (value: unknown, type: string): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false
  const record = value as Record<string, unknown>
  return typeof record['id'] === 'string' && record['type'] === type && 'payload' in record
}
