import { afterEach } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'

/** mqtt.js options of the crash tests: MQTT 3.1.1, no automatic reconnect (a test reconnects after the restart itself). */
export const crashClientOptions = { protocolVersion: 4 as const, reconnectPeriod: 0, connectTimeout: 5000 }

/**
 * For a describe block of crash tests: `connect(url, clientId, clean)`
 * opens an mqtt.js client that is force-closed when each test ends (the
 * broker processes and their data directories go with the test too);
 * `track(client)` does the same for a client opened another way.
 */
export function crashTestClients (): { connect: (url: string, clientId: string, clean: boolean) => Promise<MqttClient>, track: (client: MqttClient) => void } {
  const clients: MqttClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
  })
  return {
    track (client) { clients.push(client) },
    async connect (url, clientId, clean) {
      const client = await mqtt.connectAsync(url, { ...crashClientOptions, clientId, clean })
      clients.push(client)
      return client
    }
  }
}
