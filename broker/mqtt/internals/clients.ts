import type { Aedes, Client } from 'aedes'

/*
 * Patch of Aedes internals (tripwire: test/aedes-tripwires.test.ts reads
 * `broker.clients` the same way). Aedes 1.2 keeps its connected clients in
 * `aedes.clients`, an object keyed by client id (lib/aedes.js); it is not in
 * Aedes's typings.
 */
type WithClients = Aedes & { clients: Record<string, Client | undefined> }

/** The clients connected now, by client id. */
export function connectedClientsOf (aedes: Aedes): Readonly<Record<string, Client | undefined>> {
  return (aedes as WithClients).clients
}
