import type { Client, ConnectPacket } from 'aedes'
import mqttPacket from 'mqtt-packet'
import { peerOf } from '../../listeners/peer.js'
import type { ClientLimits } from '../client-limits.js'

/** CONNACK return code 0x02, identifier rejected (MQTT 3.1.1 §3.2.2.3). */
const IDENTIFIER_REJECTED = 2

type Done = (error: Error | null, success: boolean) => void

/**
 * Aedes's `preConnect`, before it authenticates or touches the session.
 *
 * A zero-byte client id asks the server to assign one, which only makes
 * sense for a clean session [MQTT-3.1.3-6, MQTT-3.1.3-7]: Aedes 1.2 gives
 * `aedes_{uuid}` to both, so a persistent session would be stored under a
 * name the client can never ask for again. With CleanSession 0 the server
 * must answer CONNACK 0x02 and close the connection [MQTT-3.1.3-8].
 * The clean-session case is left to Aedes, which already assigns the id.
 *
 * The client id's length and the keep-alive are held to `limits.*`: MQTT
 * 3.1.1 has no code for a keep-alive out of bounds, and 0x02 is what
 * Mosquitto answers with there too.
 */
export function createPreConnect (limits: Pick<ClientLimits, 'connectRefusal'>) {
  return function preConnect (client: Client, packet: ConnectPacket, done: Done): void {
    const clientId = packet.clientId ?? ''
    if (!packet.clean && clientId === '') {
      refuse(client, 'identifier rejected: a persistent session needs a client id', done)
      return
    }
    const limit = limits.connectRefusal(clientId, packet.keepalive ?? 0, peerOf(client.conn)?.remoteAddress ?? 'unknown')
    if (limit !== null) {
      refuse(client, `identifier rejected: over limits.${limit}`, done)
      return
    }
    done(null, true)
  }
}

function refuse (client: Client, message: string, done: Done): void {
  const refused = Object.assign(new Error(message), { errorCode: IDENTIFIER_REJECTED })
  const connack = mqttPacket.generate({ cmd: 'connack', returnCode: IDENTIFIER_REJECTED, sessionPresent: false })
  try {
    // Aedes destroys the socket once `done` has the error: write first, and
    // answer when the CONNACK has left (or the socket failed).
    client.conn.write(connack, () => { done(refused, false) })
  } catch {
    done(refused, false)
  }
}
