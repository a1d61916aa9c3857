import type { IPublishPacket, MqttClient } from 'mqtt'
import { PREFETCH_TOPIC } from '../protocol/topics.js'
import { takeAcksOver, writePuback } from './deferred-puback.js'
import { InOrderAcks, type AckEntry, type Outcome } from './in-order-acks.js'
import { subscribeOrRefuse } from './suback.js'

export type { Outcome } from './in-order-acks.js'

/** What the connection tells the task runner about the delivery it is working on. */
export interface Delivery {
  /** True once acknowledging would be wrong: the connection dropped (the broker took the task back) or the worker gave up on it at close. */
  stale (): boolean
  /** Aborted when the worker's close deadline passes. */
  readonly abandoned: AbortSignal
}

export type Processor = (packet: IPublishPacket, delivery: Delivery) => Promise<Outcome>

export interface WorkerConnectionOptions {
  filter: string
  group: string
  /** Tasks run at once, and the window asked of the broker. */
  concurrency: number
  process: Processor
  onError: (err: Error) => void
}

/** A delivery and its place in the acknowledgement order; it is its own {@link Delivery} (no closure per task). */
class Task implements Delivery {
  constructor (
    readonly packet: IPublishPacket,
    readonly entry: AckEntry | null,
    readonly generation: number,
    readonly abandoned: AbortSignal,
    readonly connection: { readonly generation: number }
  ) {}

  stale (): boolean {
    return this.connection.generation !== this.generation || this.abandoned.aborted
  }
}

/**
 * The one connection of a worker: it takes up to `concurrency` tasks from its
 * shared subscription (the broker's window for this member is set to the
 * same number, docs/shared-subscriptions.md), runs them at once, and
 * acknowledges them in the order they arrived [MQTT-4.6.0-2] (see
 * ./in-order-acks.ts): a task's PUBACK goes out once its outcome, and that of
 * every task received before it, has been published and acknowledged by the
 * broker. A task that finishes early waits for a slower one ahead of it, and
 * holds its place in the window meanwhile (docs/client.md).
 */
export class WorkerConnection {
  readonly #conn: MqttClient
  readonly #options: WorkerConnectionOptions
  readonly #acks = new InOrderAcks()
  /** Received beyond the concurrency (a window larger than asked): started as running tasks finish. */
  #waiting: Task[] = []
  #running = 0
  // Read by each Task's stale() through this object.
  #state = { generation: 0 }
  #closing = false
  #abandon = new AbortController()
  #idle: (() => void) | null = null
  readonly #ready: Promise<void>
  readonly #writePuback = (messageId: number): void => { writePuback(this.#conn, messageId) }

  constructor (conn: MqttClient, options: WorkerConnectionOptions) {
    this.#conn = conn
    this.#options = options
    takeAcksOver(conn, (packet) => this.#receive(packet))
    conn.on('close', () => {
      // The broker takes back every unacknowledged task of this connection:
      // running ones go on but are stale, waiting ones never start.
      this.#state.generation++
      this.#acks.clear()
      this.#waiting = []
    })
    conn.on('error', (err) => options.onError(err))
    this.#ready = new Promise<void>((resolve, reject) => {
      const onFirstError = (err: Error): void => { conn.off('close', onFirstClose); reject(err) }
      const onFirstClose = (): void => { conn.off('error', onFirstError); reject(new Error('connection closed before the subscription was made')) }
      conn.once('error', onFirstError)
      conn.once('close', onFirstClose)
      conn.on('connect', () => {
        this.#join().then(() => {
          conn.off('error', onFirstError)
          conn.off('close', onFirstClose)
          resolve()
        }, (err: unknown) => {
          options.onError(err as Error)
          reject(err as Error)
        })
      })
    })
    this.#ready.catch(() => undefined)
  }

  /** Tasks running now. */
  get running (): number {
    return this.#running
  }

  /** The connection itself, for publishing the tasks' outcomes. */
  get mqtt (): MqttClient {
    return this.#conn
  }

  /** Resolves once connected, with the window set and the subscription granted. */
  ready (): Promise<void> {
    return this.#ready
  }

  /**
   * Stops taking tasks; lets the running ones finish until `deadline`
   * (epoch ms), then gives them up (unacknowledged, so the broker
   * redelivers them) and disconnects.
   */
  async close (deadline: number): Promise<void> {
    this.#closing = true
    let finished = true
    if (this.#running > 0) {
      let timer: NodeJS.Timeout | undefined
      finished = await Promise.race([
        new Promise<boolean>((resolve) => { this.#idle = () => resolve(true) }),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now())) })
      ])
      clearTimeout(timer)
      this.#idle = null
      if (!finished) this.#abandon.abort(new Error('the worker closed before the task finished'))
    }
    // A graceful DISCONNECT goes out after the PUBACKs just written; the
    // broker takes back anything it sent meanwhile (never run, see #receive).
    await this.#conn.endAsync(!finished).catch(() => this.#conn.endAsync(true))
  }

  // Runs on every CONNACK: clean sessions, so the window and the
  // subscription are set again after each reconnection (resubscribe is off).
  async #join (): Promise<void> {
    const { group, concurrency, filter } = this.#options
    await this.#conn.publishAsync(PREFETCH_TOPIC, JSON.stringify({ prefetch: concurrency, group }), { qos: 1 })
    await subscribeOrRefuse(() => this.#conn.subscribeAsync(filter, { qos: 1 }), filter)
  }

  #receive (packet: IPublishPacket): void {
    // QoS 0 needs no PUBACK; QoS 2 is never granted by a group (docs/shared-subscriptions.md).
    const entry = packet.qos === 1 && packet.messageId !== undefined ? this.#acks.receive(packet.messageId) : null
    const task = new Task(packet, entry, this.#state.generation, this.#abandon.signal, this.#state)
    if (this.#closing) {
      // Not taken: without a PUBACK the broker gives it to another member
      // once this connection closes. Tasks received earlier are still
      // acknowledged; nothing after this one can be.
      if (entry !== null) this.#settle(task, 'hold')
      return
    }
    if (this.#running < this.#options.concurrency) this.#start(task)
    else this.#waiting.push(task)
  }

  #start (task: Task): void {
    this.#running++
    void this.#run(task)
  }

  // One async method rather than a .catch().then() chain: no closures per task.
  async #run (task: Task): Promise<void> {
    let outcome: Outcome
    try {
      outcome = await this.#options.process(task.packet, task)
    } catch (err) {
      this.#options.onError(err as Error)
      outcome = 'hold'
    }
    this.#running--
    if (task.entry !== null && !task.stale()) this.#settle(task, outcome)
    const next = this.#waiting.shift()
    if (next !== undefined && !this.#closing) this.#start(next)
    else if (this.#running === 0) this.#idle?.()
  }

  #settle (task: Task, outcome: Outcome): void {
    if (task.generation !== this.#state.generation) return
    const holdAtHead = this.#acks.settle(task.entry!, outcome, this.#writePuback)
    if (holdAtHead && !this.#closing) {
      // A task not acknowledged blocks every later PUBACK [MQTT-4.6.0-2]:
      // reconnecting makes the broker take it back (and the tasks behind it,
      // which are redelivered) now rather than at the lease's end.
      this.#conn.reconnect()
    }
  }
}
