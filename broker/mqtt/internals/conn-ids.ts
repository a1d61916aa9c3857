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
const CONN_ID = Symbol('fleetq.connId')
type WithConnId = object & { [CONN_ID]?: number }
let last = 0

/**
 * Gives `client` the next connection id, as a property of its own under a
 * symbol: a WeakMap entry cost about 33 bytes per idle connection and a
 * hash-table insert per connect (docs/benchmarks.md "Idle connections").
 * Every client gets it at the same point (the adapter's `handle`), so they
 * all keep one shape.
 */
export function assignConnId (client: Client): number {
  const id = ++last
  ;(client as WithConnId)[CONN_ID] = id
  return id
}

/** The connection id of `client`, or undefined for one the adapter was not handed (the broker's own publishes). */
export function connIdOf (client: object | null | undefined): number | undefined {
  return client == null ? undefined : (client as WithConnId)[CONN_ID]
}

/** `{ clientId, conn }` for a log line about `client` (both undefined for the broker itself, and then left out by pino). */
export function connFields (client: Client | null | undefined): { clientId: string | undefined, conn: number | undefined } {
  return { clientId: client?.id, conn: connIdOf(client) }
}
