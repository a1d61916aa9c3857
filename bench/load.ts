import { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import mqtt, { type MqttClient } from 'mqtt'

/**
 * Connects an mqtt.js load client: MQTT 3.1.1, clean session, no reconnect
 * (a reconnect would hide a broker that drops clients under load).
 */
export async function connectLoadClient (url: string, clientId: string): Promise<MqttClient> {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 4,
    clean: true,
    clientId,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    keepalive: 60
  }, false)
  // mqtt.js leaves Nagle on; it would add up to 40 ms to small writes and
  // measure the client's TCP stack instead of the broker.
  if (client.stream instanceof Socket) client.stream.setNoDelay(true)
  return client
}

/** Ends a client politely, and forcibly if the broker does not answer within `ms`. */
export async function closeLoadClient (client: MqttClient, ms = 2_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const forced = new Promise<void>((resolve) => {
    timer = setTimeout(() => { client.end(true, () => resolve()) }, ms)
  })
  try {
    await Promise.race([client.endAsync(false).catch(() => undefined), forced])
  } finally {
    clearTimeout(timer)
  }
}

/**
 * At most `size` operations outstanding. `acquire` resolves false once
 * `signal` aborts, so a publisher stuck on a broker that stopped answering
 * ends at the scenario's deadline.
 */
export class Window {
  #free: number
  readonly #waiters: Array<(granted: boolean) => void> = []

  constructor (size: number) {
    this.#free = size
  }

  acquire (signal: AbortSignal): Promise<boolean> | boolean {
    if (signal.aborted) return false
    if (this.#free > 0) {
      this.#free--
      return true
    }
    return new Promise<boolean>((resolve) => {
      const onAbort = (): void => {
        const at = this.#waiters.indexOf(grant)
        if (at >= 0) this.#waiters.splice(at, 1)
        resolve(false)
      }
      const grant = (granted: boolean): void => {
        signal.removeEventListener('abort', onAbort)
        resolve(granted)
      }
      this.#waiters.push(grant)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  release (): void {
    const next = this.#waiters.shift()
    if (next !== undefined) next(true)
    else this.#free++
  }
}

/** Bytes of the header every payload starts with; the rest is zero padding. */
export const PAYLOAD_HEADER = 16

/**
 * payload[0..8) publish time (performance.now(), ms), [8..12) publisher index,
 * [12..16) sequence number. Publishers and subscribers share one process,
 * hence one clock: no synchronisation error in the latency.
 */
export function encodePayload (size: number, publisher: number, seq: number): Buffer {
  const payload = Buffer.alloc(Math.max(size, PAYLOAD_HEADER))
  payload.writeUInt32LE(publisher, 8)
  payload.writeUInt32LE(seq, 12)
  // Last, so allocation and header writes are not counted as broker time.
  payload.writeDoubleLE(performance.now(), 0)
  return payload
}

export interface DecodedPayload {
  sentAt: number
  publisher: number
  seq: number
}

export function decodePayload (payload: Buffer): DecodedPayload | null {
  if (payload.length < PAYLOAD_HEADER) return null
  return { sentAt: payload.readDoubleLE(0), publisher: payload.readUInt32LE(8), seq: payload.readUInt32LE(12) }
}

export interface PublisherPlan {
  client: MqttClient
  topic: string
  qos: 0 | 1
  publisher: number
  count: number
  payloadBytes: number
  /**
   * QoS 1: released on PUBACK by this function. QoS 0 has no acknowledgement,
   * so the caller releases it when every subscriber got the message; without
   * that a QoS 0 publisher would run arbitrarily far ahead of the broker and
   * the latency would measure the size of the backlog.
   */
  window: Window
  signal: AbortSignal
}

/** Live counters: publishes can still fail after {@link runPublisher} returned. */
export interface PublisherCounters {
  sent: number
  /** Publishes mqtt.js reported as failed (connection closed, for example). */
  failed: number
}

/**
 * Publishes `count` messages keeping at most the window's size unconfirmed.
 * Returns once the last one is handed to mqtt.js or the signal aborts; it
 * does not wait for acknowledgements, so a broker that stopped answering
 * cannot hold it past the deadline.
 */
export async function runPublisher (plan: PublisherPlan, counters: PublisherCounters): Promise<void> {
  const { client, topic, qos, window, signal } = plan
  const onFailure = (): void => { counters.failed++ }
  for (let seq = 0; seq < plan.count; seq++) {
    const granted = await window.acquire(signal)
    if (!granted) return
    const payload = encodePayload(plan.payloadBytes, plan.publisher, seq)
    counters.sent++
    if (qos === 1) {
      client.publishAsync(topic, payload, { qos }).then(() => window.release(), () => { onFailure(); window.release() })
    } else {
      // Resolves once written to the socket; only a failure is of interest.
      client.publishAsync(topic, payload, { qos }).catch(onFailure)
    }
  }
}
