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
    const forwarded = Object.assign(Object.create(Object.getPrototypeOf(packet) as object) as AedesPublishPacket, packet)
    if (original !== undefined) forwarded.brokerCounter = original
    if (grantedQos < packet.qos) forwarded.qos = grantedQos as 0 | 1
    return forwarded
  }
}

function maxGrantedQos (client: Client, topic: string): number {
  const max = highestGranted(subscriptionsOf(client), topic)
  // No matching subscription: a message pushed by the broker itself (for
  // example a queued one being replayed); leave it as it is.
  return max < 0 ? 2 : max
}
