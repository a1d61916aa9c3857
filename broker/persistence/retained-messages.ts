import { Readable } from 'node:stream'
import { QlobberTrue } from 'qlobber'
import { decodePacket, encodePacket, type StoredPacket } from './packet-codec.js'
import type { KeyValueStore } from './store.js'
import type { WriteBatcher } from './write-batcher.js'

export const QLOBBER_OPTIONS = {
  wildcard_one: '+',
  wildcard_some: '#',
  separator: '/',
  match_empty_levels: true // [MQTT-4.7.1-3]
}

/**
 * Retained messages (sublevel `retained`, key `{topic}`): all of them in
 * memory, read once on start, every change written through.
 */
export class RetainedMessages {
  readonly #sublevel: KeyValueStore
  readonly #writes: WriteBatcher
  readonly #byTopic = new Map<string, StoredPacket>()

  constructor (sublevel: KeyValueStore, writes: WriteBatcher) {
    this.#sublevel = sublevel
    this.#writes = writes
  }

  async load (): Promise<void> {
    for await (const [, value] of this.#sublevel.iterator()) {
      const packet = decodePacket(value)
      this.#byTopic.set(packet.topic, packet)
    }
  }

  get size (): number {
    return this.#byTopic.size
  }

  async store (packet: StoredPacket): Promise<void> {
    const key = packet.topic
    const sublevel = this.#sublevel
    // [MQTT-3.3.1-10] a retained message with an empty payload clears the topic
    if (packet.payload.length === 0) {
      this.#byTopic.delete(packet.topic)
      await this.#writes.write([{ type: 'del', sublevel, key }])
    } else {
      const stored = decodePacket(encodePacket(packet))
      this.#byTopic.set(packet.topic, stored)
      await this.#writes.write([{ type: 'put', sublevel, key, value: encodePacket(packet) }])
    }
  }

  stream (patterns: string[]): Readable {
    const retained = [...this.#byTopic.values()]
    return Readable.from((function * () {
      for (const pattern of patterns) {
        const matcher = new QlobberTrue(QLOBBER_OPTIONS)
        matcher.add(pattern)
        // A filter starting with a wildcard does not match topics starting
        // with `$` [MQTT-4.7.2-1]: Aedes sends retained messages straight from
        // this stream, past the check its live deliveries get.
        const skipDollar = pattern.startsWith('#') || pattern.startsWith('+')
        for (const packet of retained) {
          if (skipDollar && packet.topic.startsWith('$')) continue
          if (matcher.test(packet.topic)) yield packet
        }
      }
    })())
  }
}
