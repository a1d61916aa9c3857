import type { Client } from 'aedes'
import { isShareTopic, topicMatches } from '../../../protocol/topics.js'
import { replaceSubscriptions, subscriptionsOf, type SubscriptionRecord, type Subscriptions } from './subscriptions.js'

/*
 * Patch of Aedes internals (tripwires: test/aedes-tripwires.test.ts,
 * "deliver0" and "client.subscriptions"): Aedes 1.2 gives each client a
 * `deliver0` function property (lib/client.js), which the QoS 0 path of
 * every subscription calls, and writes new subscriptions into
 * `client.subscriptions[filter]` (lib/handlers/subscribe.js `addSubs`).
 */
type Deliver = (packet: { topic: string, qos: number }, cb: () => void) => void
type ClientInternals = Client & { deliver0: Deliver }

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
 *
 * `onError` gets an exception of the fix itself, with the client; the
 * delivery then goes on unfixed (Aedes's own behaviour) rather than stopping
 * the emitter. One `onError` for every connection (it is handed the client)
 * saves a closure and its context per idle connection (docs/benchmarks.md
 * "Idle connections").
 */
export function fixOverlappingSubscriptions (client: Client, onError: (err: unknown, client: Client) => void): void {
  const c = client as ClientInternals
  // One function for every client, bound to it with Aedes's own deliver0:
  // a closure made per connection cost about 56 bytes more per idle
  // connection (its context), docs/benchmarks.md "Idle connections".
  c.deliver0 = deliverAtHighestQos.bind(c, c.deliver0, onError)
  const subscriptions = subscriptionsOf(c)
  Object.defineProperty(subscriptions, UNWRAPPED, { value: subscriptions })
  replaceSubscriptions(c, new Proxy(subscriptions, tracking))
}

/**
 * The object under the Proxy, kept under a symbol key of itself, not
 * enumerable (`for...in`, `Object.keys` and spreads skip it; the Proxy has
 * no `get` trap, so reading it through the Proxy is a plain read).
 * Enumerating the Proxy goes through
 * its `ownKeys` and a `getOwnPropertyDescriptor` per filter, a new array and
 * descriptor objects each time: 0.7 KB per QoS 1 delivery in
 * {@link highestGranted} (docs/benchmarks.md "The broker's RSS").
 */
const UNWRAPPED = Symbol('fleetq.unwrappedSubscriptions')

/** `client.deliver0` once fixed: steps aside for a QoS > 0 message that a QoS > 0 subscription of the client also matches (point 1 above). */
function deliverAtHighestQos (this: ClientInternals, deliver0: Deliver, onError: (err: unknown, client: Client) => void, packet: { topic: string, qos: number }, cb: () => void): void {
  let stepAside = false
  try {
    stepAside = packet.qos > 0 && highestGranted(subscriptionsOf(this), packet.topic) > 0
  } catch (err) {
    onError(err, this)
  }
  if (stepAside) {
    setImmediate(cb)
    return
  }
  deliver0(packet, cb)
}

/** One handler for every client's subscriptions: it needs nothing but the target. */
const tracking: ProxyHandler<Subscriptions> = {
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
}

/**
 * The highest QoS granted among a client's subscriptions whose filter matches
 * `topic`, or -1 when none does. `$share/` filters are left out: Aedes keeps
 * them only as literal subscriptions (see broker/shared/).
 */
export function highestGranted (subscriptions: Subscriptions, topic: string): number {
  let max = -1
  const unwrapped = (subscriptions as Subscriptions & { [UNWRAPPED]?: Subscriptions })[UNWRAPPED] ?? subscriptions
  for (const filter in unwrapped) {
    if (isShareTopic(filter)) continue
    const sub = unwrapped[filter] as SubscriptionRecord & Partial<TrackedSubscription>
    const qos = sub[OWN_QOS] ?? sub.qos
    if (qos > max && topicMatches(filter, topic)) max = qos
  }
  return max
}
