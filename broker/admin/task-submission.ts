import type { Logger } from 'pino'
import { buildEnvelope } from '../../protocol/envelope.js'
import { AdminError, ErrorCodes, FleetqError, type ValidationIssue } from '../../protocol/errors.js'
import type { TaskEnvelope } from '../../protocol/generated/task-types.js'
import { isTaskTypeName } from '../../protocol/schema-registry.js'
import { taskTopic } from '../../protocol/topics.js'
import type { GateDecision, TaskGate } from '../tasks/task-gate.js'
import type { PublishPacket } from '../types/mqtt.js'
import type { SubmitResult } from './admin-api.js'

/** The envelope fields an operator may set on a task submitted through the admin API. */
export interface SubmitOptions {
  maxAttempts?: number
  timeoutMs?: number
  idempotencyKey?: string
}

/** Who the admin API submits as: the envelope's `producer`; it asks for no result (`replyTo`). */
export const ADMIN_PRODUCER = 'admin'

export interface Submitted {
  envelope: TaskEnvelope
  topic: string
  /** What the task gate made of it, and so what was published. */
  decision: GateDecision
}

/**
 * Tasks the broker submits itself (`POST /api/tasks/{type}`, dead letters
 * requeued). The broker's own publishes do not pass Aedes's
 * `authorizePublish`, where the task gate sits for clients
 * (broker/mqtt/hooks/authorize-publish.ts), so the gate is called here, on
 * the same packet, before it is published: the same schemas, envelope checks
 * and idempotency keys as any submission.
 */
export class TaskSubmission {
  readonly #gate: Pick<TaskGate, 'inspect' | 'payloadIssues'>
  readonly #publish: (packet: PublishPacket) => Promise<void>
  readonly #topicPrefix: string
  readonly #logger: Logger

  constructor (gate: Pick<TaskGate, 'inspect' | 'payloadIssues'>, publish: (packet: PublishPacket) => Promise<void>, topicPrefix: string, logger: Logger) {
    this.#gate = gate
    this.#publish = publish
    this.#topicPrefix = topicPrefix
    this.#logger = logger
  }

  /**
   * A new task, refused with nothing published unless the gate lets it
   * through: FLEETQ_UNKNOWN_TASK_TYPE for a type without a schema,
   * FLEETQ_REQUEST_INVALID (with `issues`) for a payload or option its
   * schemas refuse. A repeated idempotency key answers with the first task's id.
   */
  async submit (type: string, payload: unknown, options: SubmitOptions): Promise<SubmitResult> {
    const optionIssues = submitOptionIssues(options)
    if (!isTaskTypeName(type)) optionIssues.unshift({ path: '/type', message: `must be a task type name, got ${JSON.stringify(type)}`, keyword: 'taskType' })
    if (optionIssues.length > 0) throw invalid(type, optionIssues)
    const payloadIssues = this.#gate.payloadIssues(type, payload)
    if (payloadIssues === null) throw new FleetqError(ErrorCodes.UNKNOWN_TASK_TYPE, `unknown task type "${type}": no schema is registered for it`)
    if (payloadIssues.length > 0) throw invalid(type, payloadIssues.map((i) => ({ ...i, path: `/payload${i.path}` })))
    const { envelope, topic, packet, decision } = this.#inspect(type, payload, options)
    if (decision.action === 'dead-lettered') {
      const issues = decision.issues ?? []
      if (issues.some((i) => i.keyword === 'taskType')) {
        throw new FleetqError(ErrorCodes.UNKNOWN_TASK_TYPE, `unknown task type "${type}": no schema is registered for it`)
      }
      throw invalid(type, issues)
    }
    if (decision.action === 'duplicate') return { id: decision.taskId ?? envelope.id, type, topic }
    await this.#publishDecided(packet, decision)
    this.#logger.info({ type, taskId: envelope.id }, 'task submitted through the admin API')
    return { id: envelope.id, type, topic }
  }

  /**
   * Submits a dead letter's task again as a new first attempt. Whatever the
   * gate decides is published, as for a client: a task still invalid
   * becomes a new dead letter, with the gate's reasons.
   */
  async resubmit (type: string, payload: unknown, options: SubmitOptions): Promise<Submitted> {
    const { envelope, topic, packet, decision } = this.#inspect(type, payload, options)
    await this.#publishDecided(packet, decision)
    return { envelope, topic, decision }
  }

  #inspect (type: string, payload: unknown, options: SubmitOptions): Submitted & { packet: PublishPacket } {
    const { maxAttempts, timeoutMs, idempotencyKey } = options
    const envelope = buildEnvelope({ type, payload, producer: ADMIN_PRODUCER, replyTo: false, maxAttempts, timeoutMs, idempotencyKey })
    const topic = taskTopic(type, this.#topicPrefix)
    const packet: PublishPacket = { cmd: 'publish', topic, payload: Buffer.from(JSON.stringify(envelope)), qos: 1, retain: false, dup: false }
    // No client id: the broker is no client, so the gate's impersonation rule does not apply (docs/security.md).
    const decision = this.#gate.inspect(packet, null)
    return { envelope, topic, packet, decision }
  }

  /** QoS 1: resolves once the message is stored in its group; only then is an idempotency key stored. */
  async #publishDecided (packet: PublishPacket, decision: GateDecision): Promise<void> {
    try {
      await this.#publish(packet)
    } catch (err) {
      decision.release?.()
      throw err
    }
    await decision.commit?.()
  }
}

function invalid (type: string, issues: ValidationIssue[]): AdminError {
  const reasons = issues.map((i) => `${i.path === '' ? '(root)' : i.path} ${i.message}`).join('; ')
  return new AdminError(ErrorCodes.REQUEST_INVALID, `invalid ${type} task: ${reasons}`, { issues })
}

function submitOptionIssues (options: SubmitOptions): ValidationIssue[] {
  const issues: ValidationIssue[] = []
  for (const key of ['maxAttempts', 'timeoutMs'] as const) {
    const value = options[key]
    if (value !== undefined && (!Number.isSafeInteger(value) || value < 1)) {
      issues.push({ path: `/${key}`, message: 'must be an integer >= 1', keyword: 'minimum' })
    }
  }
  const key = options.idempotencyKey
  if (key !== undefined && (typeof key !== 'string' || key === '')) {
    issues.push({ path: '/idempotencyKey', message: 'must be a non-empty string', keyword: 'type' })
  }
  return issues
}
