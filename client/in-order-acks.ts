/** 'ack': PUBACK the task; 'hold': do not, so the broker gives it to another worker. */
export type Outcome = 'ack' | 'hold'

/** One QoS 1 PUBLISH received on the connection, waiting for its outcome. */
export interface AckEntry {
  readonly messageId: number
  outcome: Outcome | null
}

/**
 * The PUBACKs of one connection, released in the order the PUBLISHes were
 * received [MQTT-4.6.0-2]: an entry's PUBACK goes out once it and every
 * earlier entry have an outcome. A 'hold' at the head stops the release: the
 * connection must then be dropped (the broker takes back every unacknowledged
 * task) since acknowledging a later task would skip it.
 */
export class InOrderAcks {
  #entries: AckEntry[] = []
  #head = 0

  /** Entries received and not yet released. */
  get size (): number {
    return this.#entries.length - this.#head
  }

  receive (messageId: number): AckEntry {
    const entry: AckEntry = { messageId, outcome: null }
    this.#entries.push(entry)
    return entry
  }

  /**
   * Sets `entry`'s outcome, then calls `ack` for each entry now releasable,
   * in order. Returns true when a 'hold' is at the head. Only for entries
   * received since the last clear().
   */
  settle (entry: AckEntry, outcome: Outcome, ack: (messageId: number) => void): boolean {
    entry.outcome = outcome
    const entries = this.#entries
    while (this.#head < entries.length) {
      const head = entries[this.#head]!
      if (head.outcome === null || head.outcome === 'hold') {
        this.#compact()
        return head.outcome === 'hold'
      }
      this.#head++
      ack(head.messageId)
    }
    this.clear()
    return false
  }

  // Under steady load some task is always running, so the array never
  // empties: drop the released prefix now and then instead of shifting.
  #compact (): void {
    if (this.#head < 1024 || this.#head * 2 < this.#entries.length) return
    this.#entries = this.#entries.slice(this.#head)
    this.#head = 0
  }

  /** The connection closed: its unacknowledged PUBLISHes are the broker's again. */
  clear (): void {
    this.#entries = []
    this.#head = 0
  }
}
