import type { Logger } from 'pino'
import type { BrokerStats } from '../broker.js'

/** Where the broker's statistics go, in Mosquitto's `$SYS/broker/...` layout (docs/operations.md). */
export const SYS_BROKER_PREFIX = '$SYS/broker/'

export interface SysTopicsOptions {
  /** Publishes one retained QoS 0 message as the broker. */
  publish: (topic: string, payload: string) => Promise<void>
  stats: () => Pick<BrokerStats, 'connectedClients' | 'traffic'>
  version: string
  intervalMs: number
  logger: Logger
}

/**
 * Publishes the values that map onto Mosquitto's `$SYS/broker/...` topics,
 * retained, every `sysIntervalSeconds` (Mosquitto's `sys_interval`), so
 * tools and dashboards made for Mosquitto read them as they are. Once the
 * broker is secured, only the admin role may read `$SYS/` (docs/security.md).
 */
export class SysTopics {
  readonly #options: SysTopicsOptions
  readonly #startedAt = Date.now()
  #timer: NodeJS.Timeout | null = null
  #publishing: Promise<void> = Promise.resolve()

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

  /** The topics and values of one round. */
  values (): Array<[string, string]> {
    const { connectedClients, traffic } = this.#options.stats()
    return [
      ['version', `fleetq version ${this.#options.version}`],
      ['uptime', `${Math.floor((Date.now() - this.#startedAt) / 1000)} seconds`],
      ['clients/connected', String(connectedClients)],
      ['publish/messages/received', String(traffic.messagesReceived)],
      ['publish/messages/sent', String(traffic.messagesSent)],
      ['publish/bytes/received', String(traffic.bytesReceived)],
      ['publish/bytes/sent', String(traffic.bytesSent)]
    ]
  }

  #tick (): void {
    const round = this.values()
    this.#publishing = this.#publishing.then(async () => {
      for (const [topic, value] of round) await this.#options.publish(`${SYS_BROKER_PREFIX}${topic}`, value)
    }).catch((err: unknown) => {
      this.#options.logger.warn({ err }, 'could not publish $SYS/broker/ values')
    })
  }
}
