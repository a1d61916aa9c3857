import { EventEmitter } from 'node:events'
import { buildEnvelope, envelopeDefaults } from '../protocol/envelope.js'
import { ErrorCodes, FleetqClientError, TaskFailedError, TaskValidationError } from '../protocol/errors.js'
import type { TaskEnvelope, TaskPayloads } from '../protocol/generated/task-types.js'
import type { TaskResultMessage } from '../protocol/messages.js'
import { PendingReplies } from '../protocol/request-reply.js'
import type { TaskSchemas } from '../protocol/schema-registry.js'
import { resultFilter, taskTopic } from '../protocol/topics.js'
import type { Message } from './message.js'
import { checkSubmitOptions, type SubmitManyOptions, type SubmitOptions } from './submit-options.js'

/** The payload type of a task type: checked for the shipped types, `unknown` for types registered at run time. */
export type PayloadOf<T extends string> = T extends keyof TaskPayloads ? TaskPayloads[T] : unknown

export interface TaskHandleEvents {
  /** A worker called `progress(value)`. */
  progress: [value: number]
}

/**
 * A submitted task: its id, its result, its progress events. Progress is a
 * state, not a stream: a `progress` listener added later first hears the
 * latest value reported. A worker can report before `submit()` resolves, as
 * the broker hands a task to a worker as soon as it is stored, before the
 * PUBACK (docs/durability.md, "Stored by its group").
 */
export class TaskHandle extends EventEmitter<TaskHandleEvents> {
  readonly id: string
  readonly #result: Promise<unknown>
  #progress: number | undefined

  /** @internal */
  constructor (id: string, result: Promise<unknown>) {
    super()
    this.id = id
    this.#result = result
    // result() may never be called: do not turn a failure into an unhandled rejection.
    result.catch(() => undefined)
    ;(this as EventEmitter).on('newListener', (event: string | symbol, listener: (value: number) => void) => {
      const latest = this.#progress
      // After the caller's on() returns, as any later event would be.
      if (event === 'progress' && latest !== undefined) queueMicrotask(() => { listener.call(this, latest) })
    })
  }

  /** The latest progress a worker reported, or undefined before the first. */
  get progress (): number | undefined {
    return this.#progress
  }

  /** @internal */
  reportProgress (value: number): void {
    this.#progress = value
    this.emit('progress', value)
  }

  /**
   * Resolves with the worker's return value; rejects with TaskFailedError
   * after the last attempt (or an UnrecoverableError), or FleetqClientError
   * `FLEETQ_CLIENT_CLOSED` if the client closes first.
   */
  result<R = unknown> (): Promise<R> {
    return this.#result as Promise<R>
  }
}

/** What the producer needs from its client. */
export interface ProducerHost {
  readonly clientId: string
  schemas (): Promise<TaskSchemas>
  publishJson (topic: string, value: unknown, options: { qos: 1, delay?: number }): Promise<void>
  /** Sends SUBSCRIBE only: messages reach {@link Producer.onResult} through a route the client installed at start. */
  subscribeRoute (filter: string): Promise<void>
}

/** Results that arrived for no handle of this process (a persistent session's backlog), until claimed with task(id). */
const MAX_UNCLAIMED = 10_000

/** Publishes of one submitMany() unacknowledged at once. */
export const SUBMIT_MANY_WINDOW = 256

/** submit() and result tracking for one client. */
export class Producer {
  readonly #host: ProducerHost
  /** Results awaited, by task id (request/reply: protocol/request-reply.ts). */
  readonly #results: PendingReplies<unknown>
  readonly #handles = new Map<string, TaskHandle>()
  readonly #unclaimed = new Map<string, TaskResultMessage>()
  #closed = false

  constructor (host: ProducerHost) {
    this.#host = host
    this.#results = new PendingReplies(() => host.subscribeRoute(this.resultFilter))
  }

  get resultFilter (): string {
    return resultFilter(this.#host.clientId)
  }

  async submit<T extends string> (type: T, payload: PayloadOf<T>, options: SubmitOptions = {}): Promise<TaskHandle> {
    if (this.#closed) throw closedError()
    checkSubmitOptions(options)
    const schemas = await this.#host.schemas()
    // Throws TaskValidationError (or UnknownTaskTypeError) before anything is sent.
    const envelope = this.#envelope(schemas, type, payload, options, options.idempotencyKey)
    const handle = this.#track(envelope.id)
    try {
      await this.#results.subscribed()
      await this.#host.publishJson(taskTopic(type), envelope, { qos: 1, delay: options.delay ?? 0 })
    } catch (err) {
      this.#forget(envelope.id)
      throw publishFailed('submit', `the ${type} task`, err)
    }
    return handle
  }

  /**
   * Validates every payload first (all or nothing), then publishes them
   * pipelined: up to {@link SUBMIT_MANY_WINDOW} unacknowledged at once rather
   * than one round trip each. Resolves with the handles, in order, once the
   * broker has acknowledged every task.
   */
  async submitMany<T extends string> (type: T, payloads: ReadonlyArray<PayloadOf<T>>, options: SubmitManyOptions = {}): Promise<TaskHandle[]> {
    if (this.#closed) throw closedError()
    if (!Array.isArray(payloads)) throw new FleetqClientError(ErrorCodes.SUBMIT_OPTIONS_INVALID, 'submitMany: payloads must be an array')
    const { idempotencyKeys, ...shared } = options
    if ((shared as SubmitOptions).idempotencyKey !== undefined) {
      throw new FleetqClientError(ErrorCodes.SUBMIT_OPTIONS_INVALID, 'submitMany: one idempotencyKey for every task would run only the first: give idempotencyKeys, one per payload')
    }
    if (idempotencyKeys !== undefined && (!Array.isArray(idempotencyKeys) || idempotencyKeys.length !== payloads.length)) {
      throw new FleetqClientError(ErrorCodes.SUBMIT_OPTIONS_INVALID, `submitMany: idempotencyKeys must be an array with one key per payload (${payloads.length})`)
    }
    checkSubmitOptions(shared)
    const schemas = await this.#host.schemas()
    // Every payload is checked before the first is sent.
    const envelopes = payloads.map((payload, index) => this.#envelope(schemas, type, payload, shared, idempotencyKeys?.[index], index))
    const handles = envelopes.map((envelope) => this.#track(envelope.id))
    const topic = taskTopic(type)
    const delay = shared.delay ?? 0
    let failure: unknown = null
    let next = 0
    const publishNext = async (): Promise<void> => {
      while (failure === null && next < envelopes.length) {
        const envelope = envelopes[next++]!
        try {
          await this.#host.publishJson(topic, envelope, { qos: 1, delay })
        } catch (err) {
          failure ??= err
        }
      }
    }
    try {
      await this.#results.subscribed()
    } catch (err) {
      failure = err
    }
    // Each lane awaits its PUBACK before its next publish: at most that many are unacknowledged at once.
    await Promise.all(Array.from({ length: Math.min(SUBMIT_MANY_WINDOW, envelopes.length) }, publishNext))
    if (failure !== null) {
      for (const envelope of envelopes) this.#forget(envelope.id)
      throw publishFailed('submitMany', `${envelopes.length} ${type} tasks`, failure)
    }
    return handles
  }

  /** A handle for a task submitted earlier, possibly by a previous process with the same client id and a persistent session. */
  task (id: string): TaskHandle {
    const existing = this.#handles.get(id)
    if (existing !== undefined) return existing
    if (this.#closed) return new TaskHandle(id, Promise.reject(closedError()))
    const handle = this.#track(id)
    const early = this.#unclaimed.get(id)
    if (early !== undefined) {
      this.#unclaimed.delete(id)
      this.#settle(early)
    } else {
      this.#results.subscribed().catch((err: unknown) => { this.#fail(id, err as Error) })
    }
    return handle
  }

  /** Route handler for `$fleetq/results/{clientId}/+`. */
  onResult (message: Message): void {
    let result: TaskResultMessage
    try {
      result = message.json<TaskResultMessage>()
    } catch {
      return
    }
    if (typeof result?.id !== 'string' || message.params[0] !== result.id) return
    if (this.#handles.has(result.id)) {
      this.#settle(result)
    } else if (result.status !== 'progress') {
      this.#unclaimed.set(result.id, result)
      if (this.#unclaimed.size > MAX_UNCLAIMED) this.#unclaimed.delete(this.#unclaimed.keys().next().value!)
    }
  }

  close (): void {
    this.#closed = true
    this.#results.rejectAll(closedError())
    this.#handles.clear()
  }

  /** The task's envelope, or TaskValidationError (naming `index` in a bulk submission). */
  #envelope (schemas: TaskSchemas, type: string, payload: unknown, options: Omit<SubmitOptions, 'idempotencyKey'>, idempotencyKey: string | undefined, index?: number): TaskEnvelope {
    const issues = schemas.validatePayload(type, payload)
    if (issues.length > 0) throw new TaskValidationError(type, issues, { index })
    const envelope = buildEnvelope({
      type,
      payload,
      producer: this.#host.clientId,
      maxAttempts: options.maxAttempts,
      timeoutMs: options.timeout,
      backoff: options.backoff ?? envelopeDefaults.backoff,
      idempotencyKey
    })
    const envelopeIssues = schemas.validateEnvelope(envelope)
    if (envelopeIssues.length > 0) throw new TaskValidationError(type, envelopeIssues, { index })
    return envelope
  }

  #track (id: string): TaskHandle {
    const handle = new TaskHandle(id, this.#results.wait(id))
    this.#handles.set(id, handle)
    return handle
  }

  #forget (id: string): void {
    this.#handles.delete(id)
    this.#results.reject(id, closedError())
  }

  #fail (id: string, err: Error): void {
    this.#handles.delete(id)
    this.#results.reject(id, err)
  }

  #settle (result: TaskResultMessage): void {
    const handle = this.#handles.get(result.id)
    if (handle === undefined) return
    if (result.status === 'progress') {
      if (typeof result.progress === 'number') handle.reportProgress(result.progress)
      return
    }
    // The first final result wins: a task redelivered after a lost worker may report twice.
    this.#handles.delete(result.id)
    if (result.status === 'completed') this.#results.resolve(result.id, result.result)
    else this.#results.reject(result.id, new TaskFailedError(result.id, result.error ?? 'task failed', result.attempts))
  }
}

function publishFailed (call: string, what: string, err: unknown): FleetqClientError {
  if (err instanceof FleetqClientError) return err
  return new FleetqClientError(ErrorCodes.PUBLISH_FAILED, `${call}: could not publish ${what}: ${(err as Error).message}`, { cause: err })
}

function closedError (): FleetqClientError {
  return new FleetqClientError(ErrorCodes.CLIENT_CLOSED, 'the client is closed')
}
