import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { Client } from './client.js'
import { ErrorCodes, FleetqClientError, UnknownTaskTypeError } from '../protocol/errors.js'
import type { PayloadOf } from './producer.js'
import { TaskRunner, type OutcomePublisher, type RunnerEvents, type TaskHandler } from './task-runner.js'
import { isTopicLevel, taskShareFilter } from '../protocol/topics.js'
import { WorkerConnection } from './worker-connection.js'
import { corkForTurn } from './deferred-puback.js'
import { topicWithDelay } from './delay.js'
import { directPublisher } from './direct-publish.js'

/** Options of {@link createWorker}. */
export interface WorkerOptions {
  /** Workers of one group share the tasks; each group gets every task. @defaultValue the task type */
  group?: string
  /** Tasks run at once, all on the worker's one MQTT connection. @defaultValue 1 */
  concurrency?: number
  /** Client id of the worker's connection. @defaultValue `{client id}-{type}-{random}` */
  clientId?: string
  /**
   * A task the broker has sent more often than this without it ever
   * finishing (it crashes or hangs workers) is dead-lettered.
   * @defaultValue 5
   */
  maxDeliveries?: number
}

export interface CloseOptions {
  /** How long running tasks may take to finish; after that they are given up (and redelivered elsewhere). @defaultValue 30000 */
  timeoutMs?: number
}

/** Events of {@link Worker}. An 'error' with no listener is dropped, never thrown. */
export type WorkerEvents = RunnerEvents

const sendOptions = { qos: 1 } as const

const defaults = { concurrency: 1, maxDeliveries: 5, closeTimeoutMs: 30_000 } as const

/**
 * Takes tasks of one type from the shared subscription
 * `$share/{group}/tasks/{type}`, on one connection, and acknowledges each
 * only after its outcome was published. Made by {@link createWorker}.
 */
export class Worker extends EventEmitter<WorkerEvents> {
  readonly type: string
  readonly group: string
  #connection: WorkerConnection | null = null
  #closed: Promise<void> | null = null
  #isClosed = false
  readonly #onClosed: () => void

  /** @internal use {@link createWorker} */
  constructor (type: string, group: string, onClosed: () => void = () => undefined) {
    super()
    this.type = type
    this.group = group
    this.#onClosed = onClosed
  }

  /** True once close() has finished: the worker's connection is closed. */
  get closed (): boolean {
    return this.#isClosed
  }

  /** Tasks running now. */
  get running (): number {
    return this.#connection?.running ?? 0
  }

  /**
   * Stops taking tasks, waits for the running ones until `timeoutMs`, then
   * disconnects; tasks still running are given up and redelivered to other
   * workers. Idempotent; the client stays open.
   */
  close (options: CloseOptions = {}): Promise<void> {
    this.#closed ??= (async () => {
      const deadline = Date.now() + (options.timeoutMs ?? defaults.closeTimeoutMs)
      await this.#connection?.close(deadline).catch(() => undefined)
      this.#isClosed = true
      this.#onClosed()
    })()
    return this.#closed
  }

  /** @internal resolves once the connection is up and subscribed */
  async ready (): Promise<void> {
    await this.#connection?.ready()
  }

  /** @internal */
  attach (connection: WorkerConnection): void {
    this.#connection = connection
  }

  /** @internal */
  emitSafe<E extends keyof WorkerEvents> (event: E, ...args: WorkerEvents[E]): void {
    if (event === 'error' && this.listenerCount('error') === 0) return
    try {
      // The overloads of EventEmitter<T>.emit do not narrow a generic key.
      ;(this.emit as (event: E, ...args: WorkerEvents[E]) => boolean)(event, ...args)
    } catch (err) {
      // A throwing listener must not decide the task's fate.
      if (event !== 'error' && this.listenerCount('error') > 0) this.emit('error', err as Error)
    }
  }
}

/**
 * Starts a worker for `type`: resolves once its connection is subscribed.
 * The handler's return value is the task's result; a throw is a failed
 * attempt (retried with backoff), an UnrecoverableError fails the task at once.
 */
export async function createWorker<T extends string, R = unknown> (
  client: Client,
  type: T,
  handler: TaskHandler<PayloadOf<T>, R>,
  options: WorkerOptions = {}
): Promise<Worker> {
  const fail = (message: string): never => { throw new FleetqClientError(ErrorCodes.WORKER_OPTIONS_INVALID, `createWorker: ${message}`) }
  if (!isTopicLevel(type)) fail(`the task type must be one topic level without wildcards, got "${type}"`)
  const group = options.group ?? type
  if (!isTopicLevel(group)) fail(`group must be one topic level without wildcards, got "${group}"`)
  const concurrency = options.concurrency ?? defaults.concurrency
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 1000) fail(`concurrency must be an integer from 1 to 1000, got ${concurrency}`)
  const maxDeliveries = options.maxDeliveries ?? defaults.maxDeliveries
  if (!Number.isInteger(maxDeliveries) || maxDeliveries < 1) fail(`maxDeliveries must be an integer >= 1, got ${maxDeliveries}`)

  const schemas = await client.schemas()
  try {
    // Fail at start-up, not at the first task, for a type nobody registered.
    schemas.validatePayload(type, {})
  } catch (err) {
    if (err instanceof UnknownTaskTypeError) throw err
  }

  const worker = new Worker(type, group, () => client.removeWorker(worker))
  // Before any connection opens: a closed client refuses (FLEETQ_CLIENT_CLOSED).
  client.addWorker(worker)
  const clientId = options.clientId ?? `${client.clientId}-${type}-${randomUUID().slice(0, 4)}`
  const filter = taskShareFilter(group, type)
  // One connection whatever the concurrency (docs/client.md, "Why one connection").
  const conn = client.openConnection({ clientId, clean: true, resubscribe: false })
  // Outcomes go out on the task's own connection: one socket per worker.
  const publisher: OutcomePublisher = {
    async publishJson (topic, value, opts) {
      try {
        const sent = topicWithDelay(topic, opts.delay)
        const payload = JSON.stringify(value)
        corkForTurn(conn.stream)
        await conn.publishAsync(sent, payload, { qos: opts.qos })
      } catch (err) {
        throw new FleetqClientError(ErrorCodes.PUBLISH_FAILED, `publish to "${topic}" failed: ${(err as Error).message}`, { cause: err })
      }
    },
    sendJson (topic, payload) {
      if (writeDirect(topic, payload)) return
      corkForTurn(conn.stream)
      conn.publish(topic, payload, sendOptions, onSent)
    }
  }
  // One callback for every result: no closure per task. A result the broker
  // never acknowledged was written just ahead of its task's PUBACK and the
  // connection dropped: the broker read both, the result only (the task is
  // redelivered) or neither (docs/client.md, "The result and the PUBACK in
  // one write"), so the failure is only reported.
  const onSent = (err?: Error | null): void => {
    if (err !== undefined && err !== null) worker.emitSafe('error', new FleetqClientError(ErrorCodes.PUBLISH_FAILED, `publishing a result failed: ${err.message}`, { cause: err }))
  }
  // Each result as one pre-built PUBLISH (docs/client.md, "Writing the result").
  const writeDirect = directPublisher(conn, onSent)
  const runner = new TaskRunner(publisher, type, handler as TaskHandler, schemas, maxDeliveries, {
    emit: (event, ...args) => worker.emitSafe(event, ...args)
  })
  worker.attach(new WorkerConnection(conn, {
    filter,
    group,
    concurrency,
    process: (packet, delivery) => runner.process(packet, delivery),
    onError: (err) => worker.emitSafe('error', err)
  }))
  try {
    await worker.ready()
  } catch (err) {
    await worker.close({ timeoutMs: 0 })
    // A SUBACK 0x80 keeps its own code; anything else is a connection that did not come up.
    const code = err instanceof FleetqClientError && err.code === ErrorCodes.SUBSCRIBE_REFUSED ? ErrorCodes.SUBSCRIBE_REFUSED : ErrorCodes.CONNECT_FAILED
    throw new FleetqClientError(code, `createWorker: could not connect and subscribe to "${filter}": ${(err as Error).message}`, { cause: err })
  }
  return worker
}
