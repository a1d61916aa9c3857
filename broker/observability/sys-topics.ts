import type { Logger } from 'pino'
import type { BrokerStats } from '../broker.js'
import type { SessionStats } from '../mqtt/adapter.js'
import { LOAD_WINDOWS, LoadAverage } from './load-averages.js'

/** Where the broker's statistics go, in Mosquitto's `$SYS/broker/...` layout (docs/operations.md). */
export const SYS_BROKER_PREFIX = '$SYS/broker/'

export interface SysTopicsOptions {
  /** Publishes one retained QoS 0 message as the broker. */
  publish: (topic: string, payload: string) => Promise<void>
  /** `sessions` is read when present (clients total and maximum, subscriptions, retained messages). */
  stats: () => Pick<BrokerStats, 'connectedClients' | 'traffic'> & { sessions?: SessionStats }
  version: string
  intervalMs: number
  logger: Logger
}

/**
 * Publishes the values that map onto Mosquitto's `$SYS/broker/...` topics,
 * retained, every `sysIntervalSeconds` (Mosquitto's `sys_interval`), each
 * when it changed, so tools and dashboards made for Mosquitto read them as
 * they are. Once the broker is secured, only the admin role may read `$SYS/`
 * (docs/security.md).
 */
export class SysTopics {
  readonly #options: SysTopicsOptions
  readonly #startedAt = Date.now()
  #timer: NodeJS.Timeout | null = null
  #publishing: Promise<void> = Promise.resolve()
  /** The value last published per topic (under SYS_BROKER_PREFIX). */
  readonly #published = new Map<string, string>()
  readonly #loads = {
    'messages/received': new LoadAverage(),
    'messages/sent': new LoadAverage(),
    'bytes/received': new LoadAverage(),
    'bytes/sent': new LoadAverage()
  }

  constructor (options: SysTopicsOptions) {
    this.#options = options
  }

  /** Publishes now, then at every interval. */
  start (): void {
    this.#tick()
    this.#timer = setInterval(() => { this.#tick() }, this.#options.intervalMs)
    this.#timer.unref()
  }

  /** Stops the timer; waits for a round in progress. */
  async close (): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer)
    this.#timer = null
    await this.#publishing
  }

  /**
   * The topics and values of one round. Each call is a round for the load
   * averages, which fold in the traffic since the previous one.
   */
  values (now = Date.now()): Array<[string, string]> {
    const { connectedClients, traffic, sessions } = this.#options.stats()
    const values: Array<[string, string]> = [
      ['version', `fleetq version ${this.#options.version}`],
      ['uptime', `${Math.floor((now - this.#startedAt) / 1000)} seconds`],
      ['clients/connected', String(connectedClients)],
      ['publish/messages/received', String(traffic.messagesReceived)],
      ['publish/messages/sent', String(traffic.messagesSent)],
      ['publish/bytes/received', String(traffic.bytesReceived)],
      ['publish/bytes/sent', String(traffic.bytesSent)],
      // Mosquitto's heap is its allocator's; ours is V8's heap in use.
      ['heap/current', String(process.memoryUsage().heapUsed)]
    ]
    if (sessions !== undefined) {
      values.push(
        ['clients/total', String(sessions.totalClients)],
        ['clients/disconnected', String(sessions.totalClients - connectedClients)],
        ['clients/maximum', String(sessions.maximumClients)],
        ['subscriptions/count', String(sessions.subscriptions)],
        // Mosquitto's name, with the space (mosquitto(8), BROKER STATUS).
        ['retained messages/count', String(sessions.retainedMessages)]
      )
    }
    const totals = {
      'messages/received': traffic.messagesReceived,
      'messages/sent': traffic.messagesSent,
      'bytes/received': traffic.bytesReceived,
      'bytes/sent': traffic.bytesSent
    }
    for (const [what, load] of Object.entries(this.#loads)) {
      const averages = load.update(totals[what as keyof typeof totals], now)
      // Per minute, two decimals, as Mosquitto writes them.
      LOAD_WINDOWS.forEach(([window], i) => { values.push([`load/${what}/${window}`, averages[i]!.toFixed(2)]) })
    }
    return values
  }

  #tick (): void {
    // As Mosquitto's sys_tree.c: a value goes out only when it differs from
    // the one last published (its load averages only when they moved by
    // 0.01, which the two decimals here amount to); the retained copy
    // already holds it for late subscribers. Uptime changes every round.
    const round = this.values().filter(([topic, value]) => this.#published.get(topic) !== value)
    for (const [topic, value] of round) this.#published.set(topic, value)
    this.#publishing = this.#publishing.then(async () => {
      // All in one turn: their retained-message writes then share one
      // LevelDB batch (broker/persistence/write-batcher.ts) instead of
      // queueing one batch each in front of the clients' QoS 1 writes.
      const results = await Promise.allSettled(round.map(([topic, value]) => this.#options.publish(`${SYS_BROKER_PREFIX}${topic}`, value)))
      const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [[round[i]![0], r.reason] as const] : []))
      // Published again next round.
      for (const [topic] of failed) this.#published.delete(topic)
      if (failed.length > 0) this.#options.logger.warn({ err: failed[0]![1], topics: failed.map(([topic]) => topic) }, 'could not publish $SYS/broker/ values')
    }).catch((err: unknown) => {
      // A round never leaves the chain rejected: close() awaits it.
      for (const [topic] of round) this.#published.delete(topic)
      this.#options.logger.warn({ err }, 'could not publish $SYS/broker/ values')
    })
  }
}
