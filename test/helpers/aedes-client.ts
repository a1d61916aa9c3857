import type { TestBroker } from './start-broker.js'

/**
 * The Aedes Client object behind client id `id` on a test broker, typed as
 * the internals a tripwire test reads (broker/mqtt/internals patches them).
 */
export function aedesClientOf<T> (b: TestBroker | undefined, id: string): T {
  if (b === undefined) throw new Error('no broker started')
  const client = (b.broker.aedes as unknown as { clients: Record<string, T | undefined> }).clients[id]
  if (client === undefined) throw new Error(`Aedes has no client ${id} in broker.clients`)
  return client
}
