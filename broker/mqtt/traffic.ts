/** Counts by the QoS of the PUBLISH: index 0, 1 and 2. */
export type ByQos = [qos0: number, qos1: number, qos2: number]

/** PUBLISH traffic since start (`stats().traffic`; Mosquitto's `$SYS/broker/messages/...` and `bytes/...`). */
export interface Traffic {
  messagesReceived: number
  messagesSent: number
  /** Payload bytes, as Mosquitto counts them. */
  bytesReceived: number
  bytesSent: number
  /** The same four by QoS (`fleetq_messages_*_total{qos}`); each adds up to its total. */
  byQos: { messagesReceived: ByQos, messagesSent: ByQos, bytesReceived: ByQos, bytesSent: ByQos }
}

export function payloadBytes (payload: string | Buffer): number {
  return typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length
}

/**
 * The counters behind {@link Traffic}. On the message path, one PUBLISH
 * costs two array increments indexed by its QoS: no Map, no allocation; the
 * totals are summed when read (a scrape, a `$SYS` round). The QoS comes from
 * a parsed packet, so it is 0, 1 or 2 [MQTT-3.3.1-4].
 */
export class TrafficCounters {
  readonly #messagesReceived: ByQos = [0, 0, 0]
  readonly #messagesSent: ByQos = [0, 0, 0]
  readonly #bytesReceived: ByQos = [0, 0, 0]
  readonly #bytesSent: ByQos = [0, 0, 0]

  received (qos: 0 | 1 | 2, bytes: number): void {
    this.#messagesReceived[qos]++
    this.#bytesReceived[qos] += bytes
  }

  sent (qos: 0 | 1 | 2, bytes: number): void {
    this.#messagesSent[qos]++
    this.#bytesSent[qos] += bytes
  }

  /** A copy, totals included. */
  read (): Traffic {
    const copy = (counts: ByQos): ByQos => [counts[0], counts[1], counts[2]]
    const sum = (counts: ByQos): number => counts[0] + counts[1] + counts[2]
    return {
      messagesReceived: sum(this.#messagesReceived),
      messagesSent: sum(this.#messagesSent),
      bytesReceived: sum(this.#bytesReceived),
      bytesSent: sum(this.#bytesSent),
      byQos: {
        messagesReceived: copy(this.#messagesReceived),
        messagesSent: copy(this.#messagesSent),
        bytesReceived: copy(this.#bytesReceived),
        bytesSent: copy(this.#bytesSent)
      }
    }
  }
}
