import type { MqttClient } from 'mqtt'

export interface PublishStream {
  /** Sequence numbers whose PUBACK arrived. */
  acked: Set<number>
  /** Resolves once every publish still in flight has settled (acked or failed). */
  settled (): Promise<void>
}

/**
 * Publishes QoS 1 messages numbered 0, 1, 2... with `window` in flight at
 * once until `count` are acknowledged, then stops sending and returns with
 * the rest still in flight: a crash test kills the broker at that moment,
 * between PUBACKs and queue writes.
 */
export async function publishUntilAcked (pub: MqttClient, topicOf: (n: number) => string, count: number, window = 100): Promise<PublishStream> {
  const acked = new Set<number>()
  const inflight = new Set<Promise<void>>()
  let next = 0
  while (acked.size < count) {
    while (inflight.size < window) {
      const n = next++
      const p: Promise<void> = pub.publishAsync(topicOf(n), String(n), { qos: 1 })
        .then(() => { acked.add(n) }, () => undefined)
        .finally(() => inflight.delete(p))
      inflight.add(p)
    }
    await Promise.race(inflight)
  }
  return { acked, settled: async () => { await Promise.allSettled([...inflight]) } }
}
