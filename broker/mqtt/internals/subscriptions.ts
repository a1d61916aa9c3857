import type { Client } from 'aedes'

/*
 * Patch of Aedes internals (tripwire: test/aedes-tripwires.test.ts,
 * "client.subscriptions"). Aedes 1.2 keeps a connection's subscriptions in
 * `client.subscriptions`, a plain object (null prototype) keyed by filter,
 * each value with the granted `qos` (lib/handlers/subscribe.js). It is not in
 * Aedes's typings.
 */
export interface SubscriptionRecord { qos: number }
export type Subscriptions = Record<string, SubscriptionRecord>

type WithSubscriptions = Client & { subscriptions: Subscriptions }

/** The connection's subscriptions, by filter (restored ones included). */
export function subscriptionsOf (client: Client): Subscriptions {
  return (client as WithSubscriptions).subscriptions
}

/** Replaces the object Aedes keeps them in (see overlapping-subscriptions.ts). */
export function replaceSubscriptions (client: Client, subscriptions: Subscriptions): void {
  (client as WithSubscriptions).subscriptions = subscriptions
}
