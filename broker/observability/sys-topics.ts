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
 * retained, every `sysIntervalSeconds` (Mosquitto's `sys_interval`), so
 * tools and dashboards made for Mosquitto read them as they are. Once the
 * broker is secured, only the admin role may read `$SYS/` (docs/security.md).
 */
export class SysTopics {
  readonly #options: SysTopicsOptions
  readonly #startedAt = Date.now()
  #timer: NodeJS.Timeout | null = null
  #publishing: Promise<void> = Promise.resolve()
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
    const round = this.values()
    this.#publishing = this.#publishing.then(async () => {
      for (const [topic, value] of round) await this.#options.publish(`${SYS_BROKER_PREFIX}${topic}`, value)
    }).catch((err: unknown) => {
      this.#options.logger.warn({ err }, 'could not publish $SYS/broker/ values')
    })
  }
}
