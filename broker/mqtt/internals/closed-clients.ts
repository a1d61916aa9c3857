import type { Aedes } from 'aedes'

/*
 * Patch of Aedes 1.2 internals (its regression test: "a socket closed during
 * CONNECT" in test/hostile-input.test.ts): lib/handlers/connect.js runs
 * authenticate → fetchSubs → restoreSubs → storeWill → registerClient →
 * CONNACK, the middle steps waiting on the persistence, and
 * `broker._finishRegisterClient(client)` adds the client to `broker.clients`
 * and counts it in `connectedClients`.
 */
interface RegistryInternals {
  _finishRegisterClient: (client: { closed: boolean }) => void
}

/**
 * Fix for a leak found by the fuzz harness (docs/mqtt-adapter.md,
 * "Fuzzing"): a socket that closes after `authenticate` answered but before
 * `registerClient` leaves Aedes's `client.close()` nothing to unregister (the
 * client is not registered yet); the CONNECT steps then go on and register
 * the closed client, which stays in `broker.clients` and in
 * `connectedClients` for good. A client that repeats CONNECT-and-close grows
 * the broker without bound. A closed client is now not registered: its
 * CONNACK then fails on the closed connection and Aedes ends the series there.
 */
export function skipClosedClients (aedes: Aedes): void {
  const registry = aedes as unknown as RegistryInternals
  const finish = registry._finishRegisterClient
  if (typeof finish !== 'function') {
    throw new Error('Aedes internals moved: _finishRegisterClient is needed (broker/mqtt/internals/closed-clients.ts)')
  }
  registry._finishRegisterClient = function registerUnlessClosed (client) {
    if (client.closed) return
    finish.call(aedes, client)
  }
}
