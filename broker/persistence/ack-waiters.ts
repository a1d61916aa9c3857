import type { ClientRef } from './persistence-keys.js'

/**
 * A queue drain or stream waiting, per connection, for its next PUBACK or
 * update (LevelPersistence's outgoingUpdate and outgoingClearMessageId wake
 * it), one waiter per connection.
 */
export class AckWaiters {
  readonly #waiters = new Map<ClientRef, () => void>()

  /**
   * Resolves once {@link wake} is called for `client`, true; false at once
   * when `gone` (the connection or the store closed). Its 50 ms timer only
   * notices a connection that closed meanwhile.
   */
  async wait (client: ClientRef, gone: boolean): Promise<boolean> {
    if (gone) return false
    await new Promise<void>((resolve) => {
      const timer = setTimeout(wake, 50)
      const waiters = this.#waiters
      function wake (): void {
        clearTimeout(timer)
        if (waiters.get(client) === wake) waiters.delete(client)
        resolve()
      }
      waiters.set(client, wake)
    })
    return true
  }

  wake (client: ClientRef): void {
    this.#waiters.get(client)?.()
  }
}
