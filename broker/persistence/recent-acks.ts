/** Acknowledged queued messages remembered, across all clients. */
const REMEMBERED = 4096

/**
 * Queued messages acknowledged lately, by client and creation number
 * (LevelPersistence.shouldDeliverLive): the one place that remembers a
 * message after its queue entry and maybe its whole queue are gone. Bounded;
 * a message acknowledged longer ago has long been delivered live or not.
 */
export class RecentAcks {
  /** `{clientId}\0{creation number}`, oldest first. */
  readonly #acked = new Set<string>()

  remember (clientId: string, counter: string): void {
    const acked = this.#acked
    acked.add(`${clientId}\u0000${counter}`)
    if (acked.size > REMEMBERED) acked.delete(acked.values().next().value as string)
  }

  has (clientId: string, counter: string): boolean {
    return this.#acked.size > 0 && this.#acked.has(`${clientId}\u0000${counter}`)
  }
}
