type Text = string | (() => string)
const text = (what: Text): string => (typeof what === 'function' ? what() : what)

/**
 * Resolves when `check()` returns true, polling every few milliseconds,
 * failing after `timeoutMs` with `what` (and `detail()` if given) in the error.
 * Used to wait for counts of messages, never for fixed time.
 */
export async function waitUntil (check: () => boolean, what: Text, timeoutMs = 20_000, detail?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${text(what)}${detail ? `: ${detail()}` : ''}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/**
 * Asserting absence needs a window: resolves after `ms` unless `check()`
 * becomes true first, in which case it rejects with `what`. Keep `ms` short
 * (300-500 ms) and use it only after every expected event has arrived.
 */
export async function expectNothingFor (ms: number, check: () => boolean, what: Text): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) throw new Error(`unexpected: ${text(what)}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  if (check()) throw new Error(`unexpected: ${text(what)}`)
}
