import { randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Socket } from 'node:net'
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt'
import { ErrorCodes, FleetqClientError } from '../protocol/errors.js'
import { corkForTurn } from './deferred-puback.js'
import { publishQos1 } from './direct-publish.js'
import { subscribeOrRefuse } from './suback.js'
import type { SubmitManyOptions, SubmitOptions } from './submit-options.js'
import { toMessage, type Message } from './message.js'
import { Producer, type PayloadOf, type TaskHandle } from './producer.js'
import { topicWithDelay } from './delay.js'
import { Schedules } from './schedules.js'
import type { TaskSchemas } from '../protocol/schema-registry.js'
import { matchTopic } from '../protocol/topics.js'

/** Options of {@link connect}. */
export interface ConnectOptions {
  /** MQTT client id; needed, and stable, for a persistent session. @defaultValue `fleetq-` and 8 random hex digits */
  clientId?: string
  /** `false` keeps the session (subscriptions and QoS 1 messages) while offline. @defaultValue true */
  clean?: boolean
  username?: string
  password?: string | Buffer
  /** Seconds. @defaultValue 30 */
  keepalive?: number
  /** Milliseconds between reconnection attempts; 0 turns reconnection off. @defaultValue 1000 */
  reconnectPeriod?: number
  /** Milliseconds to wait for CONNACK. @defaultValue 10000 */
  connectTimeout?: number
  /** The task schema registry; without it, `TaskSchemas.load()` runs on the first submit. */
  schemas?: TaskSchemas
  /** Other mqtt.js options (TLS, will, ...). The protocol is always MQTT 3.1.1. */
  mqtt?: Omit<IClientOptions, 'protocolVersion' | 'clientId' | 'clean' | 'username' | 'password' | 'keepalive' | 'reconnectPeriod' | 'connectTimeout'>
}

const defaults = { clean: true, keepalive: 30, reconnectPeriod: 1000, connectTimeout: 10_000 } as const

export interface PublishOptions {
  /** @defaultValue 0 */
  qos?: 0 | 1 | 2
  /** @defaultValue false */
  retain?: boolean
  /**
   * Milliseconds: the broker publishes the message this much later, keeping
   * QoS and retain (`$delayed/{seconds}/{topic}`, durable across restarts).
   * The promise resolves once the broker has stored it. @defaultValue 0
   */
  delay?: number
}

export interface SubscribeOptions {
  /** @defaultValue 0 */
  qos?: 0 | 1 | 2
}

export type MessageHandler = (message: Message) => void | Promise<void>

/** Events of {@link Client}. An 'error' with no listener is dropped, never thrown. */
export interface ClientEvents {
  connect: [info: { sessionPresent: boolean }]
  reconnect: []
  offline: []
  close: []
  error: [error: Error]
}

/**
 * An MQTT connection with Promise-only publish/subscribe and the task
 * producer. Made by {@link connect}.
 */
export class Client extends EventEmitter<ClientEvents> {
  readonly clientId: string
  readonly #mqtt: MqttClient
  readonly #url: string
  readonly #options: IClientOptions
  readonly #routes = new Map<string, Set<MessageHandler>>()
  readonly #producer: Producer
  /** Periodic schedules kept by the broker: upsert, list, get, remove (docs/scheduling.md). */
  readonly schedules: Schedules
  #schemas: Promise<TaskSchemas> | null
  #closed: Promise<void> | null = null
  /** Workers made on this client: close() closes them before the connection. */
  readonly #workers = new Set<{ close (): Promise<void> }>()
  /** Set once the workers are closed: from then on nothing may be published. */
  #ending = false

  /** @internal use {@link connect} */
  constructor (raw: MqttClient, url: string, options: IClientOptions & { clientId: string }, schemas?: TaskSchemas) {
    super()
    this.clientId = options.clientId
    this.#mqtt = raw
    this.#url = url
    this.#options = options
    this.#schemas = schemas === undefined ? null : Promise.resolve(schemas)
    const replyQos = replyQosFor(options)
    this.#producer = new Producer({
      clientId: this.clientId,
      schemas: () => this.#loadSchemas(),
      publishJson: (topic, value, opts) => this.publishJson(topic, value, opts),
      subscribeRoute: (filter) => this.#sendSubscribe(filter, replyQos)
    })
    // Installed before CONNACK: a persistent session's queued results can
    // arrive right after it, before any submit() of this process.
    this.#routes.set(this.#producer.resultFilter, new Set([(m) => this.#producer.onResult(m)]))
    this.schedules = new Schedules({
      clientId: this.clientId,
      publishJson: (topic, value, opts) => this.publishJson(topic, value, opts),
      subscribeRoute: (filter) => this.#sendSubscribe(filter, replyQos)
    })
    this.#routes.set(this.schedules.replyFilter, new Set([(m) => this.schedules.onReply(m)]))
    raw.on('message', (_topic, _payload, packet) => this.#dispatch(packet))
    raw.on('connect', (connack) => this.emit('connect', { sessionPresent: connack.sessionPresent }))
    raw.on('reconnect', () => this.emit('reconnect'))
    raw.on('offline', () => this.emit('offline'))
    raw.on('close', () => this.emit('close'))
    raw.on('error', (err) => this.emitError(err))
  }

  get connected (): boolean {
    return this.#mqtt.connected
  }

  /** Publishes a Buffer or string; resolves once sent (QoS 0) or acknowledged (QoS 1 and 2). */
  async publish (topic: string, payload: Buffer | string, options: PublishOptions = {}): Promise<void> {
    // Open while close() waits for the workers: they publish their results here.
    if (this.#ending) throw closedError()
    const sent = topicWithDelay(topic, options.delay)
    // A worker's results and a producer's submits of one turn leave in one
    // write, with the turn's PUBACKs (deferred-puback.ts): on this machine
    // a system call costs more than the packet it sends (docs/benchmarks.md).
    if (this.#mqtt.connected && this.#mqtt.stream instanceof Socket) corkForTurn(this.#mqtt.stream)
    const qos = options.qos ?? 0
    const retain = options.retain ?? false
    try {
      // A task, a result: one pre-built packet rather than mqtt-packet's field-by-field write.
      const direct = qos === 1 && !retain && typeof payload === 'string' ? publishQos1(this.#mqtt, sent, payload) : null
      await (direct ?? this.#mqtt.publishAsync(sent, payload, { qos, retain }))
    } catch (err) {
      throw new FleetqClientError(ErrorCodes.PUBLISH_FAILED, `publish to "${topic}" failed: ${(err as Error).message}`, { cause: err })
    }
  }

  /** Publishes `JSON.stringify(value)`. */
  publishJson (topic: string, value: unknown, options: PublishOptions = {}): Promise<void> {
    return this.publish(topic, JSON.stringify(value), options)
  }

  /**
   * Subscribes `handler` to `filter` (wildcards and `$share/{group}/...`
   * allowed). Resolves once the broker granted it, with a function that
   * removes this handler (and unsubscribes when it was the filter's last).
   */
  async subscribe (filter: string, handler: MessageHandler, options: SubscribeOptions = {}): Promise<() => Promise<void>> {
    if (this.#closed !== null) throw closedError()
    let handlers = this.#routes.get(filter)
    if (handlers === undefined) {
      handlers = new Set()
      this.#routes.set(filter, handlers)
    }
    handlers.add(handler)
    try {
      await this.#sendSubscribe(filter, options.qos ?? 0)
    } catch (err) {
      handlers.delete(handler)
      if (handlers.size === 0) this.#routes.delete(filter)
      throw err
    }
    let removed = false
    return async () => {
      if (removed) return
      removed = true
      const current = this.#routes.get(filter)
      current?.delete(handler)
      if (current === undefined || current.size > 0 || this.#closed !== null) return
      this.#routes.delete(filter)
      await this.#mqtt.unsubscribeAsync(filter)
    }
  }

  /**
   * Submits a task: validates `payload` against the type's schema (throws
   * TaskValidationError before anything is sent), wraps it in the task
   * envelope and publishes it at QoS 1 to `tasks/{type}`. Resolves once the
   * broker has it.
   */
  submit<T extends string> (type: T, payload: PayloadOf<T>, options?: SubmitOptions): Promise<TaskHandle> {
    return this.#producer.submit(type, payload, options)
  }

  /**
   * Submits many tasks of one type, like BullMQ's `addBulk`: every payload is
   * validated first, and one invalid payload throws TaskValidationError
   * (with its `index`) before anything is sent. Then they are published
   * pipelined on this connection, not one round trip each. Resolves with the
   * handles, in the payloads' order, once the broker has every task.
   */
  submitMany<T extends string> (type: T, payloads: ReadonlyArray<PayloadOf<T>>, options?: SubmitManyOptions): Promise<TaskHandle[]> {
    return this.#producer.submitMany(type, payloads, options)
  }

  /**
   * The handle of a task submitted earlier with this client id, for example
   * before a restart with a persistent session (`clean: false`).
   */
  task (id: string): TaskHandle {
    return this.#producer.task(id)
  }

  /**
   * Closes the workers made on this client (each as `worker.close()` does:
   * running tasks finish and are acknowledged), then disconnects and rejects
   * pending results. Idempotent.
   */
  close (): Promise<void> {
    this.#closed ??= (async () => {
      // The workers publish results, retries and dead letters on this
      // connection: they finish before it goes, or a result would be lost.
      await Promise.allSettled([...this.#workers].map((worker) => worker.close()))
      this.#ending = true
      this.#producer.close()
      this.schedules.close()
      this.#routes.clear()
      await this.#mqtt.endAsync().catch(() => this.#mqtt.endAsync(true))
    })()
    return this.#closed
  }

  /** @internal the schema registry, loaded once. */
  schemas (): Promise<TaskSchemas> {
    return this.#loadSchemas()
  }

  /** @internal registers a worker made on this client; refused once the client is closing. */
  addWorker (worker: { close (): Promise<void> }): void {
    if (this.#closed !== null) throw closedError()
    this.#workers.add(worker)
  }

  /** @internal a worker that finished closing. */
  removeWorker (worker: { close (): Promise<void> }): void {
    this.#workers.delete(worker)
  }

  /** @internal opens another connection to the same broker with the same credentials (a worker's). */
  openConnection (overrides: IClientOptions): MqttClient {
    return withNoDelay(mqtt.connect(this.#url, { ...this.#options, ...overrides, protocolVersion: 4 }))
  }

  /** @internal */
  emitError (err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  #loadSchemas (): Promise<TaskSchemas> {
    this.#schemas ??= import('../protocol/schema-registry.js').then(({ TaskSchemas }) => TaskSchemas.load()).catch((err: unknown) => {
      this.#schemas = null
      throw err
    })
    return this.#schemas
  }

  async #sendSubscribe (filter: string, qos: 0 | 1 | 2): Promise<void> {
    await subscribeOrRefuse(() => this.#mqtt.subscribeAsync(filter, { qos }), filter)
  }

  #dispatch (packet: IPublishPacket): void {
    for (const [filter, handlers] of this.#routes) {
      const params = matchTopic(filter, packet.topic)
      if (params === null) continue
      for (const handler of handlers) {
        try {
          const done = handler(toMessage(packet, params))
          if (done instanceof Promise) done.catch((err: unknown) => this.emitError(err as Error))
        } catch (err) {
          this.emitError(err as Error)
        }
      }
    }
  }
}

/**
 * Connects to `url` (mqtt://, mqtts://, ws://, wss://) with MQTT 3.1.1.
 * Resolves once connected; rejects with `FLEETQ_CONNECT_FAILED` if the first
 * connection fails. Later losses reconnect every `reconnectPeriod` ms.
 */
export async function connect (url: string, options: ConnectOptions = {}): Promise<Client> {
  const fail = (message: string): never => { throw new FleetqClientError(ErrorCodes.CONNECT_FAILED, message) }
  if (options.clientId !== undefined && (options.clientId === '' || options.clientId.includes('/') || /[+#]/.test(options.clientId))) {
    // The client id is a level of its result topic.
    fail(`clientId must be non-empty and contain no "/", "+" or "#", got "${options.clientId}"`)
  }
  const keepalive = options.keepalive ?? defaults.keepalive
  if (!Number.isInteger(keepalive) || keepalive < 0) fail(`keepalive must be an integer number of seconds >= 0, got ${keepalive}`)
  const clientId = options.clientId ?? `fleetq-${randomUUID().slice(0, 8)}`
  const mqttOptions: IClientOptions & { clientId: string } = {
    log: quietLog(),
    // mqtt.js otherwise sets its keepalive timer again on every PUBACK it
    // receives: a cleared and a new interval per task acknowledged. Off, it
    // sends a PINGREQ once per keepalive period whatever the traffic, which
    // [MQTT-3.1.2-23] allows; a broker that stops answering is still noticed
    // (no PINGRESP within half a period).
    reschedulePings: false,
    ...options.mqtt,
    protocolVersion: 4,
    clientId,
    clean: options.clean ?? defaults.clean,
    keepalive,
    reconnectPeriod: options.reconnectPeriod ?? defaults.reconnectPeriod,
    connectTimeout: options.connectTimeout ?? defaults.connectTimeout
  }
  if (options.username !== undefined) mqttOptions.username = options.username
  if (options.password !== undefined) mqttOptions.password = options.password
  const raw = withNoDelay(mqtt.connect(url, mqttOptions))
  const client = new Client(raw, url, mqttOptions, options.schemas)
  try {
    await new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        raw.off('connect', onConnect)
        raw.off('error', onError)
        raw.off('close', onClose)
      }
      const onConnect = (): void => { cleanup(); resolve() }
      const onError = (err: Error): void => { cleanup(); reject(err) }
      const onClose = (): void => { cleanup(); reject(new Error('connection closed before CONNACK')) }
      raw.on('connect', onConnect)
      raw.on('error', onError)
      raw.on('close', onClose)
    })
  } catch (err) {
    await raw.endAsync(true).catch(() => undefined)
    throw new FleetqClientError(ErrorCodes.CONNECT_FAILED, `could not connect to ${url}: ${(err as Error).message}`, { cause: err })
  }
  return client
}

/**
 * The QoS this client subscribes to its own results and replies with
 * (`$fleetq/results/{clientId}/+`, `$fleetq/replies/{clientId}/+`). A clean
 * session lasts as long as its connection and is then discarded, its
 * unacknowledged QoS 1 messages with it [MQTT-3.1.2-6]; only a persistent
 * session has them resent after a reconnection [MQTT-4.4.0-1]. So for a
 * clean session QoS 0 delivers exactly what QoS 1 would, in order on the
 * one TCP connection, without a PUBACK from this client per result and the
 * broker's packet id and in-flight state for each (docs/client.md, "Topics").
 * A persistent session keeps QoS 1: its results wait while it is offline.
 */
function replyQosFor (options: IClientOptions): 0 | 1 {
  return options.clean === false ? 1 : 0
}

/**
 * Nagle's algorithm holds a small packet back until the previous one is
 * acknowledged: with delayed ACKs that adds tens of milliseconds to each QoS 1
 * round trip. mqtt.js leaves it on; TCP and TLS sockets get it off
 * on every (re)connection.
 */
function withNoDelay (raw: MqttClient): MqttClient {
  raw.on('connect', () => {
    (raw.stream as { setNoDelay?: (noDelay: boolean) => void } | undefined)?.setNoDelay?.(true)
  })
  return raw
}

/**
 * mqtt.js calls its `debug` logger a dozen times per packet even when it is
 * off: a few percent of a worker's CPU per task. It is replaced by a no-op
 * unless `DEBUG` asks for mqtt.js's logs.
 */
function quietLog (): IClientOptions['log'] {
  return /mqttjs|\*/.test(process.env.DEBUG ?? '') ? undefined : noop
}

function noop (): void {}

function closedError (): FleetqClientError {
  return new FleetqClientError(ErrorCodes.CLIENT_CLOSED, 'the client is closed')
}
