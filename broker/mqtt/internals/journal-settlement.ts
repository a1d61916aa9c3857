import type { PublishJournal } from '../../durability/publish-journal.js'
import { isRoutedAtGate } from '../hooks/authorize-publish.js'

/*
 * Relies on Aedes internals (tripwire: test/backlog-order.test.ts, "journal
 * entry"): Aedes 1.2 runs a QoS > 0 publish as storeRetained → enqueueOffline
 * (`persistence.outgoingEnqueueCombi(subs, packet)`, also with no subs) →
 * emitPacket → `published(original)`; the packet it queues is an aedes-packet
 * copy of the client's, which keeps the client's `payload` Buffer by reference.
 */

interface Carried { payload: unknown }

/** Marks a client packet settled at enqueue (a property, not a WeakSet: no ephemeron per message for the GC). */
const SETTLED = Symbol('fleetq.settledAtEnqueue')

/** Accepted packets whose enqueue never came (a failed PUBACK write) are forgotten past this many. */
const MAX_WAITING = 100_000

/**
 * Settles a client's QoS 1 publish journal entry in the same store batch that
 * queues the message for persistent sessions, instead of after `published`.
 *
 * Why (docs/durability.md, "Queue limit"): a journal entry left after its
 * message was queued is replayed on start, and the replay joins the queue
 * behind everything queued since. Without a limit that is a harmless
 * duplicate (the queued copy goes first). At the limit the queued copy may
 * have been dropped as the oldest, and the replayed copy then overtakes
 * nothing older but arrives after newer messages of the same publisher:
 * `test/soak.test.ts` saw "200 after 298" [MQTT-4.6.0-6]. Entries of the last
 * in-flight window (about 100 per publisher) were left at every kill, since
 * `published` waits for the live deliveries.
 *
 * Both writes go through the shared write batcher in the same turn, so they
 * land in one LevelDB batch (write-batcher.ts: the writes issued within one
 * turn are one batch): after `kill -9` the message is queued and not in the
 * journal, or the other way round, never both.
 *
 * A client's QoS 1 message that a shared-subscription group takes was
 * stored by the group before its PUBACK (hooks/authorize-publish.ts). Any
 * other message a group may hold (not routed at the gate) keeps its entry
 * until the group has stored it (hooks/published.ts).
 */
export class JournalSettlement {
  readonly #journal: Pick<PublishJournal, 'settle' | 'holds'>
  readonly #mayReachGroup: (topic: string) => boolean
  /**
   * Client packets accepted by authorizePublish and not queued yet, by
   * payload Buffer (kept by aedes-packet's copy). A Map, not a WeakMap: each
   * entry lives a few turns, and weak entries cost the GC per message
   * (qos1-fanin measured 20 % slower with a WeakMap and a WeakSet).
   */
  readonly #byPayload = new Map<object, object>()

  constructor (journal: Pick<PublishJournal, 'settle' | 'holds'>, mayReachGroup: (topic: string) => boolean) {
    this.#journal = journal
    this.#mayReachGroup = mayReachGroup
  }

  /** authorizePublish accepted a client's publish (after the gate, which may replace the payload). */
  accepted (packet: Carried & { qos: number }): void {
    if (packet.qos !== 1 || typeof packet.payload !== 'object' || packet.payload === null) return
    // Not journaled (no durable destination, docs/durability.md): nothing to settle.
    if (!this.#journal.holds(packet as Parameters<PublishJournal['holds']>[0])) return
    if (this.#byPayload.size >= MAX_WAITING) this.#byPayload.clear() // those settle in `published`, as before
    this.#byPayload.set(packet.payload, packet)
  }

  /** Called synchronously just before the persistence issues the batch that queues `packet` (Aedes's copy). */
  enqueued (packet: Carried & { topic: string }): void {
    if (typeof packet.payload !== 'object' || packet.payload === null) return
    const original = this.#byPayload.get(packet.payload)
    if (original === undefined) return
    this.#byPayload.delete(packet.payload)
    // Its groups were handled before the PUBACK (queued in each, or none matched: hooks/authorize-publish.ts): only a later group append would need the entry.
    if (!isRoutedAtGate(original as Parameters<typeof isRoutedAtGate>[0]) && this.#mayReachGroup(packet.topic)) return
    ;(original as { [SETTLED]?: true })[SETTLED] = true
    this.#journal.settle(original as Parameters<PublishJournal['settle']>[0])
  }

  /** `published`'s settle: skipped for an entry already settled at enqueue. */
  settle (packet: Parameters<PublishJournal['settle']>[0]): void {
    if ((packet as { [SETTLED]?: true })[SETTLED] === true) return
    this.#journal.settle(packet)
  }
}
