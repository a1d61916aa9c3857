import type { PublishPacket } from '../types/mqtt.js'
import type { Logger } from 'pino'
import type { JournalStore } from '../persistence/journal-store.js'

const JOURNAL_KEY = Symbol('fleetq.journalKey')

type JournaledPacket = PublishPacket & { [JOURNAL_KEY]?: string }

/**
 * Makes a QoS 1 PUBACK durable without forking Aedes.
 *
 * Aedes 1.2 writes the PUBACK before it stores the message for its subscribers
 * (lib/handlers/publish.js, QoS 1 case), so a crash in that window loses a
 * message the publisher was told is safe. `authorizePublish` runs before that
 * PUBACK: we store the packet in a journal there, and remove it once Aedes has
 * stored and routed the message (`published`). On start, whatever is left in
 * the journal was acknowledged but maybe not routed, and is published again:
 * at least once, as QoS 1 promises [MQTT-4.3.2].
 *
 * The entries live in a `JournalStore` (broker/persistence/journal-store.ts).
 */
export class PublishJournal {
  readonly #store: JournalStore
  readonly #logger: Logger
  /** Recorded and not yet settled: publishes still being routed. */
  readonly #open = new Set<string>()
  #removals: Array<Promise<void>> = []

  constructor (store: JournalStore, logger: Logger) {
    this.#store = store
    this.#logger = logger
  }

  /**
   * Called from authorizePublish, after access checks, before the PUBACK,
   * for a client's publish with a durable destination
   * (durable-destinations.ts). Only QoS 1 is journaled (QoS 2 is kept by
   * Aedes until PUBREL); null when there is nothing to write, so the hook can
   * answer at once.
   */
  record (packet: PublishPacket): Promise<void> | null {
    return packet.qos === 1 ? this.#append(packet) : null
  }

  async #append (packet: PublishPacket): Promise<void> {
    const key = await this.#store.append({
      cmd: 'publish',
      topic: packet.topic,
      payload: Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload),
      qos: 1,
      retain: packet.retain,
      dup: false
    })
    ;(packet as JournaledPacket)[JOURNAL_KEY] = key
    this.#open.add(key)
  }

  /** Whether `record` journaled this packet (a QoS 1 publish with no durable destination is not: docs/durability.md, "What is journaled"). */
  holds (packet: PublishPacket): boolean {
    return (packet as JournaledPacket)[JOURNAL_KEY] !== undefined
  }

  /** Called from `published`: the message is now stored for every subscriber. */
  settle (packet: PublishPacket): void {
    const key = (packet as JournaledPacket)[JOURNAL_KEY]
    if (key === undefined) return
    this.#open.delete(key)
    // Not awaited: a crash before this delete lands only replays the message,
    // which QoS 1 allows, and the publisher's pipeline is not held up.
    const removal = this.#store.remove(key).catch((err: unknown) => {
      this.#logger.error({ err, key }, 'could not clear publish journal entry')
    })
    this.#removals.push(removal)
    if (this.#removals.length > 1000) this.#removals = this.#removals.slice(-100)
  }

  /**
   * On a graceful stop: waits (up to `timeoutMs`) for publishes still being
   * routed to settle and their journal entries to go, so a clean restart does
   * not replay, and duplicate, messages that were delivered.
   */
  async drain (timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.#open.size > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    if (this.#open.size > 0) this.#logger.warn({ pending: this.#open.size }, 'stopping with publishes still being routed; they will be replayed on start')
    await Promise.all(this.#removals)
  }

  /** Publishes again what a previous run acknowledged but did not finish routing. */
  async replay (publish: (packet: PublishPacket) => Promise<void>): Promise<number> {
    const entries = await this.#store.entries()
    for (const { key, packet } of entries) {
      await publish({
        cmd: 'publish',
        topic: packet.topic,
        payload: packet.payload,
        qos: 1,
        retain: packet.retain,
        dup: false
      })
      await this.#store.remove(key)
    }
    if (entries.length > 0) this.#logger.info({ count: entries.length }, 'replayed acknowledged messages from the publish journal')
    return entries.length
  }
}
