import type { IPublishPacket, MqttClient } from 'mqtt'
import { PREFETCH_TOPIC } from '../protocol/topics.js'
import { subscribeOrRefuse } from './suback.js'

/** What a slot tells the task runner about the delivery it is working on. */
export interface Delivery {
  /** True once acknowledging would be wrong: the connection dropped (the broker took the task back) or the worker gave up on it at close. */
  stale (): boolean
  /** Aborted when the worker's close deadline passes. */
  readonly abandoned: AbortSignal
}

/** 'ack': PUBACK the task; 'hold': do not, so the broker gives it to another worker. */
export type Outcome = 'ack' | 'hold'

export type Processor = (packet: IPublishPacket, delivery: Delivery) => Promise<Outcome>

/**
 * One worker connection holding at most one task. With MQTT 3.1.1 mqtt.js
 * sends the PUBACK when `handleMessage` calls back (`customHandleAcks` is
 * MQTT 5 only) and reads no further packet until then, so one connection
 * runs one task at a time: concurrency N is N slots. The window is set to 1
 * before subscribing, so the broker never parks a second task behind a busy
 * slot.
 */
export class WorkerSlot {
  readonly #conn: MqttClient
  readonly #filter: string
  readonly #group: string
  readonly #process: Processor
  readonly #onError: (err: Error) => void
  readonly #keepaliveMs: number
  #generation = 0
  #closing = false
  #abandon = new AbortController()
  #busy: Promise<void> | null = null
  #ready: Promise<void>

  constructor (conn: MqttClient, filter: string, group: string, keepaliveSeconds: number, process: Processor, onError: (err: Error) => void) {
    this.#conn = conn
    this.#filter = filter
    this.#group = group
    this.#process = process
    this.#onError = onError
    this.#keepaliveMs = keepaliveSeconds * 1000
    conn.handleMessage = (packet, callback) => this.#handle(packet, callback)
    conn.on('close', () => { this.#generation++ })
    conn.on('error', (err) => onError(err))
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
          onError(err as Error)
          reject(err as Error)
        })
      })
    })
    this.#ready.catch(() => undefined)
  }

  get busy (): boolean {
    return this.#busy !== null
  }

  /** Resolves once connected, with the window set and the subscription granted. */
  ready (): Promise<void> {
    return this.#ready
  }

  /**
   * Stops taking tasks; lets the running one finish until `deadline`
   * (epoch ms), then gives it up (it is not acknowledged, so the broker
   * redelivers it) and disconnects.
   */
  async close (deadline: number): Promise<void> {
    this.#closing = true
    let finished = true
    if (this.#busy !== null) {
      let timer: NodeJS.Timeout | undefined
      finished = await Promise.race([
        this.#busy.then(() => true),
        new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now())) })
      ])
      clearTimeout(timer)
      if (!finished) this.#abandon.abort(new Error('the worker closed before the task finished'))
    }
    // A graceful DISCONNECT goes out after the PUBACK just written; the broker
    // takes back anything it sent meanwhile (never run: see #handle).
    await this.#conn.endAsync(!finished).catch(() => this.#conn.endAsync(true))
  }

  // Runs on every CONNACK: clean sessions, so the window and the
  // subscription are set again after each reconnection (resubscribe is off).
  async #join (): Promise<void> {
    await this.#conn.publishAsync(PREFETCH_TOPIC, JSON.stringify({ prefetch: 1, group: this.#group }), { qos: 1 })
    await subscribeOrRefuse(() => this.#conn.subscribeAsync(this.#filter, { qos: 1 }), this.#filter)
  }

  #handle (packet: IPublishPacket, callback: (err?: Error) => void): void {
    if (this.#closing || this.#busy !== null) {
      // Not taken: without a PUBACK the broker gives it to another member
      // when this connection closes.
      callback(new Error('not taken'))
      return
    }
    const generation = this.#generation
    const abandoned = this.#abandon.signal
    const delivery: Delivery = {
      stale: () => this.#generation !== generation || abandoned.aborted,
      abandoned
    }
    const heartbeat = this.#heartbeat()
    this.#busy = this.#process(packet, delivery)
      .catch((err: unknown): 'hold' => { this.#onError(err as Error); return 'hold' })
      .then((outcome) => {
        clearInterval(heartbeat)
        this.#busy = null
        if (outcome === 'ack' && !delivery.stale()) {
          callback()
          return
        }
        // An error callback sends no PUBACK.
        callback(new Error('not acknowledged'))
        if (!delivery.stale() && !this.#closing) {
          // Reconnecting makes the broker take the task back now rather than at the lease's end.
          this.#conn.reconnect()
        }
      })
  }

  // While a task is held mqtt.js reads nothing, PINGRESP included, and would
  // drop the connection after 1.5 keepalives: ping by hand and keep its timer
  // from expiring. The PINGRESPs are read once the task is done.
  #heartbeat (): NodeJS.Timeout | undefined {
    if (this.#keepaliveMs <= 0) return undefined
    return setInterval(() => {
      if (!this.#conn.connected) return
      this.#conn.sendPing()
      this.#conn.reschedulePing(true)
      // a third of the keepalive: the broker allows 1.5 keepalives
      // [MQTT-3.1.2-24], so two pings can be late before it gives up
    }, Math.max(250, this.#keepaliveMs / 3))
  }
}
