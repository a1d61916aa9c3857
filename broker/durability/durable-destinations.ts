/** What a publish is checked for: where it goes and whether it is retained. */
export interface DestinationPacket {
  topic: string
  retain?: boolean
}

export interface DurableDestinationSources {
  /**
   * Aedes's persistence. With `hasDurableSubscriber` (the LevelDB and
   * memory-level one, broker/persistence/level-persistence.ts) it answers
   * synchronously whether some persistent session would queue the message; a
   * persistence without it (a future Redis one, say) cannot, and then every
   * QoS 1 publish is journaled, as before.
   */
  persistence: { hasDurableSubscriber?: (topic: string) => boolean }
  /** The shared groups: whether some group would queue the message (broker/shared/shared-subscriptions.ts). */
  groups: { matches: (topic: string) => boolean }
}

/** No durable destination: only live clean sessions receive the message. */
export const NONE = 0
/** The retained store or a persistent session's queue: kept by the publish journal until Aedes stored it. */
export const SESSIONS = 1
/** A shared group's queue: the group's own append stores it before the PUBACK (docs/durability.md). */
export const GROUPS = 2

/** A bit set of {@link SESSIONS} and {@link GROUPS}, or {@link NONE}. */
export type Destinations = number

/**
 * Where a publish is kept across a crash: the retained store, a persistent
 * session's queue ({@link SESSIONS}), a shared group's queue ({@link GROUPS}).
 * Only such a publish needs a durable write before its PUBACK
 * (docs/durability.md, "What is journaled"): after a crash nothing else would
 * receive a replay, as clean sessions end with the process and the journal is
 * replayed before the listeners open. Synchronous, as it runs on every client
 * QoS 1 publish.
 */
export function durableDestinations (sources: DurableDestinationSources): (packet: DestinationPacket) => Destinations {
  const { persistence, groups } = sources
  const hasDurableSubscriber = persistence.hasDurableSubscriber?.bind(persistence)
  if (hasDurableSubscriber === undefined) return (packet) => SESSIONS | (groups.matches(packet.topic) ? GROUPS : NONE)
  return (packet) => (packet.retain === true || hasDurableSubscriber(packet.topic) ? SESSIONS : NONE) | (groups.matches(packet.topic) ? GROUPS : NONE)
}
