import type { AedesPublishPacket, Client } from 'aedes'
import type { LevelPersistence } from '../../persistence/level-persistence.js'
import type { EmitOrder } from '../internals/emit-order.js'
import { highestGranted } from '../internals/overlapping-subscriptions.js'
import { subscriptionsOf } from '../internals/subscriptions.js'

/**
 * Aedes's `authorizeForward` hook, run for each packet about to be written to
 * a subscriber. The access policy's receive check first; then it fixes what
 * Aedes 1.2 gets wrong:
 * - QoS downgrade: Aedes looks the subscription up by the packet's topic, so a
 *   message reached through a wildcard filter (retained messages included)
 *   goes out at the publisher's QoS. A client receives at most the highest QoS
 *   of its matching subscriptions [MQTT-3.3.5-1].
 * - Counter: gives back the creation number EmitOrder replaced, which the
 *   persistence uses to find the queued copy.
 * - Reconnect: until a persistent-session connection has been handed its
 *   queue (from the moment Aedes restores its subscriptions, before CONNACK,
 *   until the queue stream is done), live messages (queued too) are left to
 *   the stream, so they cannot overtake older ones; and a message both
 *   streamed and delivered live is sent once (returning null drops this copy
 *   only; the queued copy remains). See LevelPersistence.outgoingStream.
 */
export function createAuthorizeForward (emitOrder: EmitOrder, persistence: Pick<LevelPersistence, 'shouldDeliverLive'>, mayReceive: (client: Client, topic: string) => boolean) {
  return function authorizeForward (client: Client, packet: AedesPublishPacket): AedesPublishPacket | null {
    // The ACL, again at delivery: rules reload while a client stays
    // subscribed, and a filter may cover topics a deny rule keeps from it.
    // A queued copy withheld here is dropped with it (docs/security.md).
    if (!mayReceive(client, packet.topic)) return null
    const original = emitOrder.originalCounter(packet)
    // Live deliveries have no message id yet; queue replays (connect.js
    // emptyQueue) come here with one, after being marked sent: let those pass.
    if (packet.qos > 0 && !client.clean && packet.messageId === undefined &&
      !persistence.shouldDeliverLive(client, packet.brokerId, original ?? packet.brokerCounter)) {
      return null
    }
    const grantedQos = packet.qos > 0 ? maxGrantedQos(client, packet.topic) : packet.qos
    if (original === undefined && grantedQos >= packet.qos) return packet
    return forwardedCopy(packet, original ?? packet.brokerCounter, Math.min(grantedQos, packet.qos) as 0 | 1 | 2)
  }
}

const hasOwn = Object.prototype.hasOwnProperty

/**
 * The packet as this client gets it: the creation number back, the QoS
 * lowered. The packet is shared by every subscriber, so it is a copy; one
 * object literal of aedes-packet's fields, which is all that reads it
 * (lib/client.js makes its Packet or QoSPacket from these; queue-writer.ts
 * writes them), rather than `Object.assign` onto `Object.create`, which grew
 * the copy's properties one at a time (0.7 KB per delivery, docs/benchmarks.md
 * "The broker's RSS"). Optional fields are copied when present, as
 * aedes-packet does.
 */
function forwardedCopy (packet: AedesPublishPacket, brokerCounter: number, qos: 0 | 1 | 2): AedesPublishPacket {
  const copy = {
    cmd: packet.cmd,
    brokerId: packet.brokerId,
    brokerCounter,
    topic: packet.topic,
    payload: packet.payload,
    qos,
    retain: packet.retain,
    dup: packet.dup,
    messageId: packet.messageId
  } as AedesPublishPacket & Record<string, unknown>
  const source = packet as AedesPublishPacket & Record<string, unknown>
  if (hasOwn.call(packet, 'clientId')) copy.clientId = source.clientId
  if (hasOwn.call(packet, 'nl')) copy.nl = source.nl
  if (hasOwn.call(packet, 'properties')) copy.properties = source.properties
  if (hasOwn.call(packet, 'messageExpiry')) copy.messageExpiry = source.messageExpiry
  return copy
}

function maxGrantedQos (client: Client, topic: string): number {
  const max = highestGranted(subscriptionsOf(client), topic)
  // No matching subscription: a message pushed by the broker itself (for
  // example a queued one being replayed); leave it as it is.
  return max < 0 ? 2 : max
}
