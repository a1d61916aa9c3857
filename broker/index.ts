import { EventEmitter } from 'node:events'
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket } from 'aedes'
import mqemitter from 'mqemitter'
import type { Logger } from 'pino'
import { createForwarder } from './delivery/forward.js'
import { EmitOrder } from './durability/emit-order.js'
import { PublishJournal } from './durability/publish-journal.js'
import { listenTcp, type TcpListener } from './listeners/tcp.js'
import { createLogger } from './logger.js'
import { resolveBrokerOptions, type BrokerOptions } from './options.js'
import { classifyOpenError, createPersistence } from './persistence/open-persistence.js'
import type { LevelPersistence } from './persistence/level-persistence.js'

export type { BrokerOptions, LogLevel, PersistenceKind } from './options.js'
export { brokerDefaults } from './options.js'
export * from './errors.js'

export interface BrokerEvents {
  /** A message was not queued for `clientId`: its queue is at `maxQueuedPerClient`. */
  'queue-overflow': [clientId: string, topic: string]
  /** A store or protocol failure the broker logged and survived. */
  error: [err: Error]
}

export interface BrokerStats {
  connectedClients: number
  /** Messages dropped at the per-client queue bound since start. */
  droppedMessages: number
  /** Messages waiting per persistent-session client. */
  queuedMessages: Record<string, number>
}

/** A running fleetq broker. Create it with {@link createBroker}. */
export class Broker extends EventEmitter<BrokerEvents> {
  /** The Aedes instance, for advanced use (hooks, events). */
  readonly aedes: Aedes
  readonly logger: Logger
  readonly #listener: TcpListener
  readonly #persistence: LevelPersistence
  #closing: Promise<void> | null = null

  /** @internal use {@link createBroker} */
  constructor (aedes: Aedes, listener: TcpListener, persistence: LevelPersistence, logger: Logger) {
    super()
    this.aedes = aedes
    this.#listener = listener
    this.#persistence = persistence
    this.logger = logger
    persistence.on('queue-overflow', (clientId, topic) => this.emit('queue-overflow', clientId, topic))
  }

  /** The bound TCP port (useful with `port: 0`). */
  get port (): number {
    return this.#listener.address.port
  }

  get host (): string {
    return this.#listener.address.address
  }

  /** `mqtt://host:port` of the TCP listener. */
  get url (): string {
    const host = this.host.includes(':') ? `[${this.host}]` : this.host
    return `mqtt://${host === '0.0.0.0' || host === '[::]' ? 'localhost' : host}:${this.port}`
  }

  stats (): BrokerStats {
    return {
      connectedClients: this.aedes.connectedClients,
      droppedMessages: this.#persistence.droppedMessages,
      queuedMessages: Object.fromEntries(this.#persistence.queueSizes())
    }
  }

  /** Publishes a message from the broker itself (no client). Resolves once it is stored and routed. */
  async publish (packet: Omit<PublishPacket, 'cmd' | 'dup' | 'retain' | 'qos'> & Partial<Pick<PublishPacket, 'qos' | 'retain'>>): Promise<void> {
    await publishOn(this.aedes, { cmd: 'publish', dup: false, qos: 0, retain: false, ...packet })
  }

  /**
   * Stops accepting connections, disconnects clients, writes out and closes
   * the store. Safe to call more than once; every step runs even if one fails.
   */
  close (): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close (): Promise<void> {
    const failures: unknown[] = []
    const step = async (fn: () => Promise<void>): Promise<void> => {
      try { await fn() } catch (err) { failures.push(err) }
    }
    const listenerClosed = this.#listener.close()
    await step(() => new Promise<void>((resolve) => this.aedes.close(() => resolve())))
    await step(() => listenerClosed)
    await step(() => this.#persistence.destroy())
    this.logger.info('broker closed')
    if (failures.length > 0) throw new AggregateError(failures, 'broker did not close cleanly')
  }
}

/**
 * Starts a broker: opens the store, replays the publish journal, then listens.
 * Resolves once the broker accepts connections.
 */
export async function createBroker (options: BrokerOptions = {}): Promise<Broker> {
  const resolved = resolveBrokerOptions(options)
  const logger = resolved.logger ?? createLogger(resolved.logLevel)
  const persistence = await createPersistence(resolved)
  const journal = new PublishJournal(persistence, logger)

  // Aedes needs its id before we can tell our packets from others'.
  const id = resolved.id ?? crypto.randomUUID()
  const emitOrder = new EmitOrder(id)
  const mq = emitOrder.wrap(mqemitter({ concurrency: 100, matchEmptyLevels: true }))

  let aedes: Aedes
  try {
    aedes = await Aedes.createBroker({
      id,
      mq,
      persistence,
      authorizePublish (client: Client | null, packet: PublishPacket, callback: (error?: Error | null) => void) {
        // Aedes's default: clients may not publish to $SYS/ topics.
        if (client !== null && packet.topic.startsWith('$SYS/')) {
          callback(new Error('$SYS/ topic is reserved'))
          return
        }
        if (client === null) {
          callback(null)
          return
        }
        journal.record(packet).then(() => callback(null), (err: unknown) => {
          logger.error({ err, clientId: client.id, topic: packet.topic }, 'could not journal a QoS 1 publish; not acknowledging it')
          callback(err as Error)
        })
      },
      published (packet: AedesPublishPacket, _client: Client, callback: (error?: Error | null) => void) {
        journal.settle(packet)
        callback(null)
      },
      authorizeForward: createForwarder(emitOrder, persistence)
    })
  } catch (err) {
    await persistence.destroy().catch(() => undefined)
    throw classifyOpenError(err, resolved)
  }

  aedes.on('clientError', (client, err) => {
    logger.debug({ clientId: client.id, err: err.message }, 'client error')
  })
  aedes.on('connectionError', (_client, err) => {
    logger.debug({ err: err.message }, 'connection error')
  })

  let listener: TcpListener
  try {
    await journal.replay((packet) => publishOn(aedes, packet))
    listener = await listenTcp((socket) => aedes.handle(socket), resolved.port, resolved.host)
  } catch (err) {
    await new Promise<void>((resolve) => aedes.close(() => resolve()))
    await persistence.destroy().catch(() => undefined)
    throw err
  }

  const broker = new Broker(aedes, listener, persistence, logger)
  // Aedes emits 'error' for store failures; its typings do not list it.
  ;(aedes as unknown as EventEmitter).on('error', (err: Error) => {
    logger.error({ err }, 'broker error')
    broker.emit('error', err)
  })
  logger.info({ url: broker.url, persistence: resolved.persistence, dataDir: resolved.persistence === 'level' ? resolved.dataDir : undefined }, 'broker listening')
  return broker
}

function publishOn (aedes: Aedes, packet: PublishPacket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    aedes.publish(packet, (err?: Error) => { if (err) reject(err); else resolve() })
  })
}
