import type { Socket } from 'node:net'
import type { Aedes, Client } from 'aedes'
import { peerOf } from '../listeners/peer.js'
import { clientInfo } from './hooks/util.js'
import { connectedClientsOf } from './internals/clients.js'
import { keepaliveSecondsOf } from './internals/keepalive.js'
import { subscriptionsOf } from './internals/subscriptions.js'

/** A connected client as the admin API reads it: plain data, no Aedes object. */
export interface ConnectedClient {
  id: string
  username: string | null
  /** `host:port` of the socket, or the listener's peer address for a WebSocket. */
  address: string | null
  connectedAt: number
  keepaliveSeconds: number
  clean: boolean
  /** Its subscriptions as Aedes keeps them: filter → QoS. */
  subscriptions: Array<{ topic: string, qos: number }>
}

/**
 * The clients Aedes has connected now (docs/operations.md, `/api/clients`),
 * read when asked, plus the time each connected, recorded from Aedes's
 * 'client' event (Aedes keeps none). The one place outside the hooks where
 * the admin API touches Aedes's clients.
 */
export class ConnectedClients {
  readonly #aedes: Aedes
  /**
   * Where each client keeps the time it connected, in milliseconds since
   * {@link #since}: a small integer V8 keeps in the field itself, where an
   * epoch timestamp would take a heap number per connection. A property of
   * the client under a symbol of this instance's own, as a WeakMap entry
   * cost about 33 bytes per idle connection (docs/benchmarks.md "Idle
   * connections").
   */
  readonly #connectedAt = Symbol('fleetq.connectedAt')
  /** For a client that connected before this listened (between listen and the Broker's construction). */
  readonly #since: number

  constructor (aedes: Aedes, since: number) {
    this.#aedes = aedes
    this.#since = since
    const key = this.#connectedAt
    aedes.on('client', (client) => { (client as Client & Record<symbol, number>)[key] = Date.now() - since })
  }

  get count (): number {
    return this.#aedes.connectedClients
  }

  ids (): string[] {
    return Object.keys(connectedClientsOf(this.#aedes)).sort()
  }

  /** undefined unless connected. */
  get (clientId: string): ConnectedClient | undefined {
    const client = this.#find(clientId)
    return client === undefined ? undefined : this.#view(client)
  }

  /** Closes the connection as on a DISCONNECT-less end: the will is sent, a persistent session stays stored. False unless connected. */
  async disconnect (clientId: string): Promise<boolean> {
    const client = this.#find(clientId)
    if (client === undefined) return false
    await new Promise<void>((resolve) => { client.close(() => resolve()) })
    return true
  }

  #find (clientId: string): Client | undefined {
    const clients = connectedClientsOf(this.#aedes)
    return Object.hasOwn(clients, clientId) ? clients[clientId] : undefined
  }

  #view (client: Client): ConnectedClient {
    const subs = subscriptionsOf(client)
    const subscriptions: ConnectedClient['subscriptions'] = []
    for (const topic in subs) subscriptions.push({ topic, qos: subs[topic]?.qos ?? 0 })
    return {
      id: client.id,
      username: clientInfo(client).username ?? null,
      address: addressOf(client),
      connectedAt: this.#since + ((client as Client & Record<symbol, number | undefined>)[this.#connectedAt] ?? 0),
      keepaliveSeconds: keepaliveSecondsOf(client),
      clean: client.clean,
      subscriptions
    }
  }
}

function addressOf (client: Client): string | null {
  const socket = client.conn as Partial<Socket>
  const host = typeof socket.remoteAddress === 'string' ? socket.remoteAddress : peerOf(client.conn)?.remoteAddress
  if (host === undefined) return null
  const port = typeof socket.remotePort === 'number' ? socket.remotePort : undefined
  if (port === undefined) return host
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
