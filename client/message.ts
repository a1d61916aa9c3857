import type { IPublishPacket } from 'mqtt'

/** A message given to a {@link Client.subscribe} handler. */
export interface Message {
  topic: string
  payload: Buffer
  /** The values matched by `+` and `#` in the subscription's filter, in order. */
  params: string[]
  /** The payload parsed as JSON (throws a SyntaxError if it is not JSON). */
  json<T = unknown>(): T
  /** The raw MQTT packet (qos, retain, dup, messageId). */
  packet: IPublishPacket
}

export function toMessage (packet: IPublishPacket, params: string[]): Message {
  const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
  return {
    topic: packet.topic,
    payload,
    params,
    json<T>(): T { return JSON.parse(payload.toString('utf8')) as T },
    packet
  }
}
