import { once, type EventEmitter } from 'node:events'
import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt'
import { waitUntil } from './wait.js'

export { expectNothingFor, waitUntil } from './wait.js'

/** A message as a test sees it. */
export interface Message {
  topic: string
  payload: string
  qos: number
  retain: boolean
  dup: boolean
}

export interface TestClient {
  client: MqttClient
  /** Every message received since before CONNECT went out, in arrival order. */
  messages: Message[]
  connack: IConnackPacket
}

/** MQTT 3.1.1, no auto-reconnect (a reconnecting client would hide takeovers and wills). */
export const clientDefaults: IClientOptions = { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000 }

export function toMessage (topic: string, payload: Buffer, packet: IPublishPacket): Message {
  return { topic, payload: payload.toString(), qos: packet.qos, retain: packet.retain, dup: packet.dup }
}

/**
 * Connects mqtt.js clients and ends them all in `closeAll()` (call it in
 * afterEach). The message listener is attached before CONNECT goes out: a
 * persistent session's queued messages can arrive in the same read as the
 * CONNACK.
 */
export class Clients {
  readonly #all: MqttClient[] = []

  /** Pass `messages` to collect several connections' messages in one list. */
  async connect (url: string, options: IClientOptions = {}, messages: Message[] = []): Promise<TestClient> {
    const client = mqtt.connect(url, { ...clientDefaults, ...options })
    this.#all.push(client)
    client.on('message', (topic, payload, packet) => { messages.push(toMessage(topic, payload, packet)) })
    const connack = await new Promise<IConnackPacket>((resolve, reject) => {
      const onError = (err: Error): void => { client.off('connect', onConnect); reject(err) }
      const onConnect = (packet: IConnackPacket): void => { client.off('error', onError); resolve(packet) }
      client.once('connect', onConnect)
      client.once('error', onError)
    })
    return { client, messages, connack }
  }

  /** Ends every client without waiting for in-flight acknowledgements. Idempotent. */
  async closeAll (): Promise<void> {
    await Promise.all(this.#all.splice(0).map((c) => c.endAsync(true).catch(() => undefined)))
  }
}

/** Resolves once `messages` holds at least `count` entries. */
export async function waitForMessages (messages: Message[], count: number, what: string, timeoutMs = 20_000): Promise<Message[]> {
  await waitUntil(() => messages.length >= count, `${count} ${what} (have ${messages.length})`, timeoutMs,
    () => messages.map((m) => `${m.topic}=${m.payload}`).join(', '))
  return messages
}

/**
 * For what a test reports but does not require: resolves true as soon as
 * `check()` holds, or false once `ms` have passed.
 */
export async function holdsWithin (ms: number, check: () => boolean): Promise<boolean> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  return true
}

/** Resolves with the event's arguments, or rejects after `timeoutMs`. */
export async function waitForEvent (emitter: EventEmitter | MqttClient, event: string, timeoutMs = 10_000): Promise<unknown[]> {
  try {
    // MqttClient is a Node EventEmitter at run time; its typed-events typings are not
    return await once(emitter as EventEmitter, event, { signal: AbortSignal.timeout(timeoutMs) })
  } catch (err) {
    if (err instanceof Error && err.name === 'AbortError') {
      throw new Error(`timed out after ${timeoutMs} ms waiting for '${event}'`, { cause: err })
    }
    throw err
  }
}

/** `topic=payload` of each message, for readable assertions. */
export function summary (messages: Message[]): string[] {
  return messages.map((m) => `${m.topic}=${m.payload}`)
}
