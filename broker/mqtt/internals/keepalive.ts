import type { Client } from 'aedes'

/*
 * Patch of Aedes internals, read only (tripwire: test/aedes-tripwires.test.ts).
 * Aedes 1.2 keeps no keep-alive field; lib/handlers/connect.js arms
 * `client._keepaliveInterval = keepalive * 1500 + 1` (ms; -1 when the client
 * sent 0), the 1.5 times of [MQTT-3.1.2-24].
 */
type WithKeepalive = Client & { _keepaliveInterval?: unknown }

/** The keep-alive the client asked for in CONNECT, in seconds; 0 for none. */
export function keepaliveSecondsOf (client: Client): number {
  const interval = (client as WithKeepalive)._keepaliveInterval
  return typeof interval === 'number' && interval > 0 ? Math.round((interval - 1) / 1500) : 0
}
