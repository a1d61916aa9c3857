import { EventEmitter } from 'node:events'
import type { TaskPayloads } from './generated/task-types.js'
import type { TaskSchemas } from './task-schemas.js'
import { buildEnvelope, checkSubmitOptions, type SubmitOptions } from './envelope.js'
import { ClientErrorCodes, FleetqClientError, TaskFailedError, TaskValidationError } from './errors.js'
import type { Message } from './message.js'
import type { TaskResultMessage } from './messages.js'
import { resultFilter, taskTopic } from './topics.js'

/** The payload type of a task type: checked for the shipped types, `unknown` for types registered at run time. */
export type PayloadOf<T extends string> = T extends keyof TaskPayloads ? TaskPayloads[T] : unknown

export interface TaskHandleEvents {
  /** A worker called `progress(value)`. */
  progress: [value: number]
}

/** A submitted task: its id, its result, its progress events. */
export class TaskHandle extends EventEmitter<TaskHandleEvents> {
  readonly id: string
  readonly #result: Promise<unknown>

  /** @internal */
  constructor (id: string, result: Promise<unknown>) {
    super()
    this.id = id
    this.#result = result
    // result() may never be called: do not turn a failure into an unhandled rejection.
    result.catch(() => undefined)
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

interface Pending {
  handle: TaskHandle
  resolve (value: unknown): void
  reject (err: Error): void
}

/** Results that arrived for no handle of this process (a persistent session's backlog), until claimed with task(id). */
const MAX_UNCLAIMED = 10_000

/** submit() and result tracking for one client. */
export class Producer {
  readonly #host: ProducerHost
  readonly #pending = new Map<string, Pending>()
  readonly #unclaimed = new Map<string, TaskResultMessage>()
  #subscribed: Promise<void> | null = null
  #closed = false

  constructor (host: ProducerHost) {
    this.#host = host
  }

  get resultFilter (): string {
    return resultFilter(this.#host.clientId)
  }

  async submit<T extends string> (type: T, payload: PayloadOf<T>, options: SubmitOptions = {}): Promise<TaskHandle> {
    if (this.#closed) throw closedError()
    checkSubmitOptions(options)
    const schemas = await this.#host.schemas()
    // Throws TaskValidationError (or UnknownTaskTypeError) before anything is sent.
    schemas.assertPayload(type, payload)
    const envelope = buildEnvelope(type, payload, this.#host.clientId, options)
    const envelopeIssues = schemas.validateEnvelope(envelope)
    if (envelopeIssues.length > 0) throw new TaskValidationError(type, envelopeIssues)
    const handle = this.#track(envelope.id)
    try {
      await this.#subscribeResults()
      await this.#host.publishJson(taskTopic(type), envelope, { qos: 1, delay: options.delay ?? 0 })
    } catch (err) {
      this.#pending.delete(envelope.id)
      throw err instanceof FleetqClientError ? err : new FleetqClientError(ClientErrorCodes.PUBLISH_FAILED, `submit: could not publish the ${type} task: ${(err as Error).message}`, { cause: err })
    }
    return handle
  }

  /** A handle for a task submitted earlier, possibly by a previous process with the same client id and a persistent session. */
  task (id: string): TaskHandle {
    const existing = this.#pending.get(id)
    if (existing !== undefined) return existing.handle
    if (this.#closed) return new TaskHandle(id, Promise.reject(closedError()))
    const handle = this.#track(id)
    const early = this.#unclaimed.get(id)
    if (early !== undefined) {
      this.#unclaimed.delete(id)
      this.#settle(early)
    } else {
      this.#subscribeResults().catch((err: unknown) => this.#pending.get(id)?.reject(err as Error))
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
    if (this.#pending.has(result.id)) {
      this.#settle(result)
    } else if (result.status !== 'progress') {
      this.#unclaimed.set(result.id, result)
      if (this.#unclaimed.size > MAX_UNCLAIMED) this.#unclaimed.delete(this.#unclaimed.keys().next().value!)
    }
  }

  close (): void {
    this.#closed = true
    const err = closedError()
    for (const pending of this.#pending.values()) pending.reject(err)
    this.#pending.clear()
  }

  #track (id: string): TaskHandle {
    let resolve!: (value: unknown) => void
    let reject!: (err: Error) => void
    const result = new Promise<unknown>((res, rej) => { resolve = res; reject = rej })
    const handle = new TaskHandle(id, result)
    this.#pending.set(id, { handle, resolve, reject })
    return handle
  }

  #settle (result: TaskResultMessage): void {
    const pending = this.#pending.get(result.id)
    if (pending === undefined) return
    if (result.status === 'progress') {
      if (typeof result.progress === 'number') pending.handle.emit('progress', result.progress)
      return
    }
    // The first final result wins: a task redelivered after a lost worker may report twice.
    this.#pending.delete(result.id)
    if (result.status === 'completed') pending.resolve(result.result)
    else pending.reject(new TaskFailedError(result.id, result.error ?? 'task failed', result.attempts))
  }

  #subscribeResults (): Promise<void> {
    this.#subscribed ??= this.#host.subscribeRoute(this.resultFilter).catch((err: unknown) => {
      this.#subscribed = null
      throw err
    })
    return this.#subscribed
  }
}

function closedError (): FleetqClientError {
  return new FleetqClientError(ClientErrorCodes.CLIENT_CLOSED, 'the client is closed')
}
