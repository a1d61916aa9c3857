import type { IPublishPacket } from 'mqtt'
import type { TaskEnvelope } from '../protocol/generated/task-types.js'
import type { TaskSchemas } from '../protocol/schema-registry.js'
import { computeBackoff } from '../protocol/backoff.js'
import { envelopeDefaults, errorMessage, nextAttempt, truncateError } from '../protocol/envelope.js'
import { TaskTimeoutError, UnrecoverableError, type ValidationIssue } from '../protocol/errors.js'
import type { DeadLetter, DeadLetterReason, TaskResultMessage } from '../protocol/messages.js'
import { deadLetterTopic, RESULTS_PREFIX, taskTopic } from '../protocol/topics.js'
import type { Delivery, Outcome } from './worker-connection.js'
import { TaskDeadlines, type Expiring } from './task-deadlines.js'

/** What a handler gets besides the payload. */
export interface TaskContext {
  id: string
  /** 1 for the first attempt. */
  attempt: number
  maxAttempts: number
  /** How many times the broker sent this attempt (more than 1 after a worker was lost). */
  deliveryCount: number
  /** Aborted on timeout (reason: TaskTimeoutError) or when the worker closes past its deadline. */
  signal: AbortSignal
  /** The whole envelope as received. */
  envelope: TaskEnvelope
  /** Reports progress to the producer's handle ('progress' event). */
  progress (value: number): Promise<void>
}

export type TaskHandler<P = unknown, R = unknown> = (payload: P, context: TaskContext) => R | Promise<R>

export interface RunnerEvents {
  completed: [event: { envelope: TaskEnvelope, result: unknown, durationMs: number }]
  failed: [event: { envelope: TaskEnvelope, error: Error, willRetry: boolean }]
  retrying: [event: { envelope: TaskEnvelope, nextAttempt: number, delayMs: number, error: Error }]
  'dead-lettered': [deadLetter: DeadLetter]
  error: [error: Error]
}

/** Where the runner publishes results, retries and dead letters (QoS 1). */
export interface OutcomePublisher {
  /** Resolves once the broker has it (its PUBACK). */
  publishJson (topic: string, value: unknown, options: { qos: 1, delay?: number }): Promise<void>
  /**
   * Writes a QoS 1 publish of `payload` (JSON text) now, in this turn,
   * without waiting for the broker's PUBACK: the task's own PUBACK may then
   * follow it in the same write (docs/client.md, "The result and the PUBACK
   * in one write").
   */
  sendJson (topic: string, payload: string): void
}

export interface RunnerHooks {
  emit<E extends keyof RunnerEvents> (event: E, ...args: RunnerEvents[E]): void
}

/**
 * Runs one delivered task to its outcome: validate, run the handler with its
 * timeout, then publish the result, the retry or the dead letter, and only
 * once the broker has it let the connection acknowledge the delivery.
 */
export class TaskRunner {
  readonly #publisher: OutcomePublisher
  readonly #type: string
  readonly #handler: TaskHandler
  readonly #schemas: TaskSchemas
  readonly #maxDeliveries: number
  readonly #hooks: RunnerHooks
  readonly #deadlines = new TaskDeadlines()

  constructor (publisher: OutcomePublisher, type: string, handler: TaskHandler, schemas: TaskSchemas, maxDeliveries: number, hooks: RunnerHooks) {
    this.#publisher = publisher
    this.#type = type
    this.#handler = handler
    this.#schemas = schemas
    this.#maxDeliveries = maxDeliveries
    this.#hooks = hooks
  }

  async process (packet: IPublishPacket, delivery: Delivery): Promise<Outcome> {
    const text = (typeof packet.payload === 'string' ? packet.payload : packet.payload.toString('utf8'))
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      return this.#deadLetter(delivery, text, 'validation', 'the task is not JSON', 0)
    }
    const envelopeIssues = this.#schemas.validateEnvelope(parsed)
    if (envelopeIssues.length > 0) {
      return this.#deadLetter(delivery, parsed, 'validation', `invalid task envelope: ${describe(envelopeIssues)}`, 0, envelopeIssues)
    }
    const envelope = parsed as TaskEnvelope
    const deliveries = envelope.deliveryCount ?? 1
    if (deliveries > this.#maxDeliveries) {
      // A poison task: taken many times, never finished (it may crash workers).
      return this.#deadLetter(delivery, envelope, 'failed', `delivered ${deliveries} times without completing`, envelope.attempt)
    }
    const issues = this.#schemas.validatePayload(this.#type, envelope.payload, typeof packet.payload === 'string' ? undefined : packet.payload.length)
    if (issues.length > 0) {
      return this.#deadLetter(delivery, envelope, 'validation', `invalid ${this.#type} payload: ${describe(issues)}`, envelope.attempt, issues)
    }
    const started = Date.now()
    const context = new RunContext(envelope, delivery, (value) => this.#reply(envelope, { id: envelope.id, status: 'progress', progress: value, attempts: envelope.attempt }))
    this.#deadlines.add(context)
    let result: unknown
    let message: string
    try {
      const value = this.#handler(envelope.payload, context)
      // A handler that ignores its signal keeps running; its outcome is ignored.
      result = isThenable(value) ? await context.race(value) : value
      // Serialised once, here: a result that cannot be is the handler's failure, not ours.
      const completed: TaskResultMessage = { id: envelope.id, status: 'completed', result, attempts: envelope.attempt }
      message = JSON.stringify(completed)
    } catch (err) {
      return this.#failed(envelope, toError(err), delivery)
    } finally {
      this.#ended(context)
    }
    if (delivery.stale()) return 'hold'
    // Not awaited: the broker reads the result before the task's PUBACK that
    // follows it on this connection, and stores both in one batch chain in
    // that order (docs/client.md, "The result and the PUBACK in one write").
    const to = envelope.replyTo
    if (isResultsTopic(to)) this.#publisher.sendJson(to, message)
    this.#hooks.emit('completed', { envelope, result, durationMs: Date.now() - started })
    return 'ack'
  }

  // The handler returned or threw, or its deadline passed.
  #ended (context: RunContext): void {
    this.#deadlines.delete(context)
    context.done()
  }

  async #failed (envelope: TaskEnvelope, error: Error, delivery: Delivery): Promise<Outcome> {
    // Given up at close, or the broker already took the task back: another worker has it.
    if (delivery.stale()) return 'hold'
    const unrecoverable = error instanceof UnrecoverableError || error.name === 'UnrecoverableError'
    const last = unrecoverable || envelope.attempt >= envelope.maxAttempts
    this.#hooks.emit('failed', { envelope, error, willRetry: !last })
    if (last) {
      const reason: DeadLetterReason = unrecoverable ? 'unrecoverable' : error instanceof TaskTimeoutError ? 'timeout' : 'failed'
      return this.#deadLetter(delivery, envelope, reason, error.message, envelope.attempt)
    }
    const delayMs = computeBackoff(envelope.backoff ?? envelopeDefaults.backoff, envelope.attempt)
    this.#hooks.emit('retrying', { envelope, nextAttempt: envelope.attempt + 1, delayMs, error })
    // The broker keeps the retry until its time ($delayed, docs/scheduling.md), so the
    // worker's place in the window is free at once. It is stored (PUBACKed) before the
    // original is acknowledged: a crash between the two duplicates the task
    // rather than losing it.
    await this.#publisher.publishJson(taskTopic(this.#type), nextAttempt(envelope, errorMessage(error)), { qos: 1, delay: delayMs })
    return 'ack'
  }

  async #deadLetter (delivery: Delivery, envelope: unknown, reason: DeadLetterReason, error: string, attempts: number, issues?: ValidationIssue[]): Promise<Outcome> {
    if (delivery.stale()) return 'hold'
    const deadLetter: DeadLetter = { reason, taskType: this.#type, error: truncateError(error), attempts, envelope, at: new Date().toISOString() }
    if (issues !== undefined) deadLetter.issues = issues
    await this.#publisher.publishJson(deadLetterTopic(this.#type), deadLetter, { qos: 1 })
    if (isReplyable(envelope)) {
      await this.#reply(envelope, { id: envelope.id, status: 'failed', error: deadLetter.error, attempts })
    }
    this.#hooks.emit('dead-lettered', deadLetter)
    return 'ack'
  }

  async #reply (envelope: Pick<TaskEnvelope, 'replyTo'>, message: TaskResultMessage): Promise<void> {
    const to = envelope.replyTo
    if (!isResultsTopic(to)) return
    await this.#publisher.publishJson(to, message, { qos: 1 })
  }
}

/**
 * The {@link TaskContext} of one run. Its AbortController is made only if
 * the handler reads `signal`: most handlers never do, and a controller and a
 * listener per task are a measurable part of a short task's cost.
 */
class RunContext implements TaskContext, Expiring {
  readonly id: string
  readonly attempt: number
  readonly maxAttempts: number
  readonly deliveryCount: number
  readonly envelope: TaskEnvelope
  readonly progress: (value: number) => Promise<void>
  readonly deadline: number
  readonly #delivery: Delivery
  #reject: ((reason: unknown) => void) | null = null
  #controller: AbortController | null = null
  #abortReason: unknown = undefined
  #aborted = false
  #onAbandon: (() => void) | null = null

  constructor (envelope: TaskEnvelope, delivery: Delivery, progress: (value: number) => Promise<void>) {
    this.id = envelope.id
    this.attempt = envelope.attempt
    this.maxAttempts = envelope.maxAttempts
    this.deliveryCount = envelope.deliveryCount ?? 1
    this.envelope = envelope
    this.progress = progress
    this.deadline = Date.now() + envelope.timeoutMs
    this.#delivery = delivery
  }

  /** Settles with the handler's promise, or rejects with TaskTimeoutError at the deadline. */
  race (running: PromiseLike<unknown>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#reject = reject
      running.then(resolve, reject)
    })
  }

  /** The deadline passed: abort the handler's signal and fail the attempt. */
  expire (): void {
    const err = new TaskTimeoutError(this.id, this.envelope.timeoutMs)
    this.abort(err)
    this.#reject?.(err)
  }

  get signal (): AbortSignal {
    if (this.#controller === null) {
      const controller = new AbortController()
      this.#controller = controller
      const abandoned = this.#delivery.abandoned
      if (abandoned.aborted) this.abort(abandoned.reason)
      else {
        this.#onAbandon = () => this.abort(abandoned.reason)
        abandoned.addEventListener('abort', this.#onAbandon, { once: true })
      }
      if (this.#aborted) controller.abort(this.#abortReason)
    }
    return this.#controller.signal
  }

  abort (reason: unknown): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#abortReason = reason
    this.#controller?.abort(reason)
  }

  done (): void {
    if (this.#onAbandon !== null) this.#delivery.abandoned.removeEventListener('abort', this.#onAbandon)
  }
}

/** Only to a results topic: a crafted envelope must not make workers publish anywhere. */
function isResultsTopic (to: string | undefined): to is string {
  return to !== undefined && to.startsWith(RESULTS_PREFIX) && !to.includes('+') && !to.includes('#')
}

function isThenable (value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function'
}

function isReplyable (value: unknown): value is { id: string, replyTo: string } {
  const v = value as { id?: unknown, replyTo?: unknown } | null
  return typeof v === 'object' && v !== null && typeof v.id === 'string' && typeof v.replyTo === 'string'
}

function describe (issues: ValidationIssue[]): string {
  return issues.map((i) => `${i.path === '' ? '(root)' : i.path} ${i.message}`).join('; ')
}

function toError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
