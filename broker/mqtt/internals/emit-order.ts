import type mqemitter from 'mqemitter'

/*
 * Patch of Aedes internals (tripwire: test/aedes-tripwires.test.ts,
 * "mq.emit"): Aedes 1.2 routes every publish through `broker.mq.emit(packet,
 * cb)` (aedes.js `emitPacket`), after numbering it (`brokerCounter`, set by
 * aedes-packet when the packet is created).
 */
type MQEmitter = mqemitter.MQEmitter

interface CountedPacket {
  brokerId?: string | null
  brokerCounter?: number
}

/**
 * Fix for moscajs/aedes#994: QoS 1 messages dropped as duplicates when QoS 0
 * traffic to the same client overtakes them.
 *
 * Aedes numbers a packet (`brokerCounter`) when it is created, and each client
 * drops any packet whose number is not above the highest it has seen from that
 * broker (its overlapping-subscription dedupe). A QoS 1 packet waits for its
 * queue writes before it is emitted, so a QoS 0 packet created later can be
 * emitted, and delivered, first: the QoS 1 packet then looks old and is dropped.
 *
 * We renumber every packet as it is emitted, so numbers rise in emit order and
 * the dedupe only drops true duplicates. The creation number is kept while the
 * emit is in flight so `originalCounter` can give it back: the persistence
 * indexes queued packets by it.
 */
export class EmitOrder {
  #counter = 0
  readonly #originals = new Map<number, number>()
  readonly #brokerId: string

  constructor (brokerId: string) {
    this.#brokerId = brokerId
  }

  wrap (mq: MQEmitter): MQEmitter {
    const emit = mq.emit.bind(mq)
    mq.emit = (packet, callback) => {
      const counted = packet as CountedPacket
      if (counted.brokerId !== this.#brokerId || counted.brokerCounter === undefined) {
        return emit(packet, callback)
      }
      const renumbered = ++this.#counter
      this.#originals.set(renumbered, counted.brokerCounter)
      counted.brokerCounter = renumbered
      return emit(packet, (err?: Error) => {
        // every subscriber has been called by now (mqemitter calls back last)
        this.#originals.delete(renumbered)
        callback?.(err)
      })
    }
    return mq
  }

  /** The creation number of a packet renumbered at emit, or undefined. */
  originalCounter (packet: CountedPacket): number | undefined {
    if (packet.brokerId !== this.#brokerId || packet.brokerCounter === undefined) return undefined
    return this.#originals.get(packet.brokerCounter)
  }
}
