/** What a publish is checked for: where it goes and whether it is retained. */
export interface DestinationPacket {
  topic: string
  retain?: boolean
}

/**
 * Aedes's persistence. With `hasDurableSubscriber` (the LevelDB and
 * memory-level one, broker/persistence/level-persistence.ts) it answers
 * synchronously whether some persistent session would queue the message; a
 * persistence without it (a future Redis one, say) cannot, and then every
 * QoS 1 publish is journaled.
 */
export interface DurableSubscribers {
  hasDurableSubscriber?: (topic: string) => boolean
}

/**
 * Whether a client's QoS 1 publish needs a journal entry before its PUBACK:
 * it does when the retained store or a persistent session's queue keeps it
 * (docs/durability.md, "What is journaled"). A shared group's queue keeps
 * its own copy, appended before the PUBACK (hooks/authorize-publish.ts), and
 * a publish only live clean sessions receive needs nothing: clean sessions
 * end with the process, and the journal is replayed before the listeners
 * open. Synchronous, as it runs on every client QoS 1 publish.
 */
export function journalNeeded (persistence: DurableSubscribers): (packet: DestinationPacket) => boolean {
  const hasDurableSubscriber = persistence.hasDurableSubscriber?.bind(persistence)
  if (hasDurableSubscriber === undefined) return () => true
  return (packet) => packet.retain === true || hasDurableSubscriber(packet.topic)
}
