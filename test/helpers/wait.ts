/**
 * Resolves when `check()` returns true, polling on every turn of the event
 * loop that follows an event (cheap), failing after `timeoutMs` with `what`.
 * Used to wait for counts of messages, never for fixed time (STYLE.md 12).
 */
export async function waitUntil (check: () => boolean, what: string | (() => string), timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/**
 * Asserting absence needs a window: resolves after `ms` unless `check()`
 * becomes true first, in which case it rejects with `what`.
 */
export async function expectNothingFor (ms: number, check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) throw new Error(`unexpected: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
