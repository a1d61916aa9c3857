import type { Client } from 'aedes'
import { isShareTopic, topicMatches } from '../../protocol/topics.js'

type Deliver = (packet: { topic: string, qos: number }, cb: () => void) => void
interface SubscriptionRecord { qos: number }
type ClientInternals = Client & {
  deliver0: Deliver
  subscriptions: Record<string, SubscriptionRecord>
}

const OWN_QOS = Symbol('fleetq.grantedQos')
type TrackedSubscription = SubscriptionRecord & { [OWN_QOS]: number }

/**
 * A message matching several subscriptions of one client must reach it at the
 * highest QoS granted among them [MQTT-3.3.5-1]. Aedes 1.2 gets it wrong
 * (moscajs/aedes#1074) in two ways, both fixed here per connection, right
 * after Aedes creates the client and before it can subscribe:
 *
 * 1. Each filter has its own delivery function and the client keeps only the
 *    first copy it sees; when the QoS 0 filter's copy comes first (qlobber
 *    lists `#` matches first), the QoS 1 copy is dropped. The QoS 0 path now
 *    steps aside for a QoS > 0 message when a QoS > 0 subscription also matches.
 * 2. The QoS 1 path then lowers the QoS to that of the subscription whose
 *    filter equals the topic, if any. An exact-topic subscription now reports
 *    the highest QoS among the client's subscriptions matching that topic.
 */
export function fixOverlappingSubscriptions (client: Client): void {
  const c = client as ClientInternals
  const deliver0 = c.deliver0
  c.deliver0 = function deliverQos0Unless (packet, cb) {
    if (packet.qos > 0 && highestGranted(c.subscriptions, packet.topic) > 0) {
      setImmediate(cb)
      return
    }
    deliver0(packet, cb)
  }

  const subscriptions = c.subscriptions
  c.subscriptions = new Proxy(subscriptions, {
    set (target, filter, sub: SubscriptionRecord) {
      if (typeof filter === 'string' && !/[+#]/.test(filter) && sub !== null && typeof sub === 'object') {
        const tracked = sub as TrackedSubscription
        tracked[OWN_QOS] = sub.qos
        Object.defineProperty(tracked, 'qos', {
          get: () => Math.max(tracked[OWN_QOS], highestGranted(target, filter)),
          set: (qos: number) => { tracked[OWN_QOS] = qos },
          enumerable: true,
          configurable: true
        })
      }
      target[filter as string] = sub
      return true
    }
  })
}

/**
 * The highest QoS granted among a client's subscriptions whose filter matches
 * `topic`, or -1 when none does. `$share/` filters are left out: Aedes keeps
 * them only as literal subscriptions (see broker/shared/).
 */
export function highestGranted (subscriptions: Record<string, SubscriptionRecord>, topic: string): number {
  let max = -1
  for (const filter in subscriptions) {
    if (isShareTopic(filter)) continue
    const sub = subscriptions[filter] as SubscriptionRecord & Partial<TrackedSubscription>
    const qos = sub[OWN_QOS] ?? sub.qos
    if (qos > max && topicMatches(filter, topic)) max = qos
  }
  return max
}
