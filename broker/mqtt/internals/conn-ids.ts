import type { Client } from 'aedes'

/**
 * A short id for each accepted connection, so log lines tell apart two
 * connections with the same client id (a takeover, a client reconnecting
 * while its old socket is still open). Assigned once, when the adapter is
 * handed the socket; kept with the Aedes client object, so it goes with it.
 * Log calls pass these fields explicitly: no pino child logger per
 * connection, as those would not follow the root logger's level when the
 * admin API changes it at run time (docs/operations.md#logs).
 */
const ids = new WeakMap<object, number>()
let last = 0

/** Gives `client` the next connection id. */
export function assignConnId (client: Client): number {
  const id = ++last
  ids.set(client, id)
  return id
}

/** The connection id of `client`, or undefined for one the adapter was not handed (the broker's own publishes). */
export function connIdOf (client: object | null | undefined): number | undefined {
  return client == null ? undefined : ids.get(client)
}

/** `{ clientId, conn }` for a log line about `client` (both undefined for the broker itself, and then left out by pino). */
export function connFields (client: Client | null | undefined): { clientId: string | undefined, conn: number | undefined } {
  return { clientId: client?.id, conn: connIdOf(client) }
}
