import type { Client } from 'aedes'

/*
 * Patch of Aedes internals (tripwire: test/aedes-tripwires.test.ts, "pause
 * and resume"). Aedes 1.2 reads a client's socket in batches
 * (lib/client.js `nextBatch`) and skips the next read while `_paused` is set;
 * `client.pause()` sets it and `client.resume()` clears it and reads again.
 * Neither is in Aedes's typings.
 */

type Pausable = Client & { pause (): void, resume (): void, closed: boolean }

/** Stops reading packets from `client` after the batch in progress. */
export function pauseReading (client: Client): void {
  (client as Pausable).pause()
}

/** Reads from `client` again, unless it has closed meanwhile. */
export function resumeReading (client: Client): void {
  const pausable = client as Pausable
  if (!pausable.closed) pausable.resume()
}
