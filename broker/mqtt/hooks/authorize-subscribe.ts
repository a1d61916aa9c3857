import type { Client, Subscription } from 'aedes'
import type { Logger } from 'pino'
import { isDelayedTopic, isShareTopic, parseShareTopic } from '../../../protocol/topics.js'
import type { SharedSubscriptions } from '../../shared/shared-subscriptions.js'
import type { AccessPolicy } from '../access.js'
import type { ClientLimits } from '../client-limits.js'
import { illFormedTopic } from '../topic-validity.js'
import { connFields } from '../internals/conn-ids.js'
import { clientInfo } from './util.js'

export interface AuthorizeSubscribeParts {
  access: Pick<AccessPolicy, 'authorizeSubscribe'>
  groups: Pick<SharedSubscriptions, 'prepare'>
  limits: Pick<ClientLimits, 'topicRefusal' | 'subscriptionRefused'>
  logger: Logger
  /** A filter granted (internals/granted-subscriptions.ts: only those are stored), or refused (a stored one from before goes). */
  decided: (client: Client, sub: Subscription, granted: boolean) => void
}

/**
 * Aedes's `authorizeSubscribe`, for each filter of a SUBSCRIBE and each
 * subscription a persistent session restores: the limits (filter size,
 * subscriptions per client), the access policy, then
 * `$delayed/` refused, then a `$share/` group made durable before the SUBACK.
 * Resolves with the subscription to grant, or null for SUBACK 0x80
 * (MQTT 3.1.1 §3.9.3); the connection stays up.
 */
export function createAuthorizeSubscribe ({ access, groups, limits, logger, decided }: AuthorizeSubscribeParts) {
  return async function authorizeSubscribe (client: Client, sub: Subscription): Promise<Subscription | null> {
    const granted = await grant(client, sub)
    decided(client, sub, granted !== null)
    return granted
  }

  async function grant (client: Client, sub: Subscription): Promise<Subscription | null> {
    if (illFormedTopic(sub.topic) !== null) return null
    if (limits.topicRefusal(client.id, sub.topic) !== null || limits.subscriptionRefused(client, sub.topic)) return null
    const verdict = access.authorizeSubscribe(clientInfo(client), sub.topic)
    if (!(typeof verdict === 'boolean' ? verdict : await verdict)) return null
    // `$delayed/...` is a command, never a topic anything is published to:
    // SUBACK 0x80, so no one sees delayed messages before their time.
    const share = isShareTopic(sub.topic) ? parseShareTopic(sub.topic) : null
    if (isDelayedTopic(typeof share === 'object' && share !== null ? share.filter : sub.topic)) return null
    if (share === null) return sub
    try {
      await groups.prepare(sub.topic)
    } catch (err) {
      logger.warn({ ...connFields(client), topic: sub.topic, err: (err as Error).message }, 'refused shared subscription')
      return null
    }
    // Groups deliver at QoS 0 or 1: the subscription Aedes keeps is QoS 1
    // for a QoS 2 request (Aedes 1.2 still puts the requested QoS in the
    // SUBACK; test/aedes-tripwires.test.ts).
    return { ...sub, qos: sub.qos >= 1 ? 1 : 0 }
  }
}
