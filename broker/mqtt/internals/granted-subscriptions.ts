import type { Client, Subscription } from 'aedes'

/*
 * Patch of Aedes internals (tripwire: test/aedes-tripwires.test.ts, "stores
 * only granted filters"). Aedes 1.2 stores a persistent session's
 * subscriptions in `storeSubscriptions` (lib/handlers/subscribe.js), once per
 * granted filter of a SUBSCRIBE, and each time with the whole packet's list:
 * a filter refused with 0x80 is stored all the same, so it collects offline
 * messages and comes back on the next CONNECT. Only filters that
 * authorizeSubscribe granted are let through to the store; Aedes hands the
 * hook and the store the same subscription objects.
 */

const granted = new WeakSet<object>()

/** `sub`, as authorizeSubscribe received it, was granted: the store may keep it. */
export function markGranted (sub: Subscription): void {
  granted.add(sub)
}

interface SubscriptionStore {
  addSubscriptions (client: Pick<Client, 'id'>, subs: Subscription[]): Promise<void>
}

/** Makes `persistence` store, of the subscriptions Aedes hands it, only the granted ones. */
export function storeOnlyGranted (persistence: SubscriptionStore): void {
  const addSubscriptions = persistence.addSubscriptions.bind(persistence)
  persistence.addSubscriptions = async (client, subs) => {
    const kept = subs.filter((sub) => granted.has(sub))
    if (kept.length > 0) await addSubscriptions(client, kept)
  }
}
