import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt'

export interface Received {
  topic: string
  payload: string
  packet: IPublishPacket
}

/**
 * Connects an mqtt.js client (MQTT 3.1.1, no auto-reconnect) with its message
 * listener attached before CONNECT goes out: a persistent session's queued
 * messages can arrive in the same read as the CONNACK, before an `await
 * connectAsync()` would have returned.
 */
export async function connectCollecting (url: string, options: IClientOptions, received: Received[] = []): Promise<{ client: MqttClient, received: Received[] }> {
  const client = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5000, ...options })
  client.on('message', (topic, payload, packet) => { received.push({ topic, payload: payload.toString(), packet }) })
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => { client.off('error', reject); resolve() })
    client.once('error', reject)
  })
  return { client, received }
}
