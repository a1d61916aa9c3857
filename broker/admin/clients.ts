import { AdminError, ErrorCodes } from '../../protocol/errors.js'
import { isShareTopic, shareFilter } from '../../protocol/topics.js'
import type { ConnectedClient, ConnectedClients } from '../mqtt/index.js'
import type { SharedSubscriptions } from '../shared/shared-subscriptions.js'
import type { ClientView, SubscriptionView } from './admin-api.js'

/**
 * The connected clients as the admin API shows them (`/api/clients`): what
 * the adapter knows of each (broker/mqtt/connected-clients.ts) with its
 * shared-group memberships.
 */
export class ClientDirectory {
  readonly #clients: ConnectedClients
  readonly #shared: SharedSubscriptions

  constructor (clients: ConnectedClients, shared: SharedSubscriptions) {
    this.#clients = clients
    this.#shared = shared
  }

  list (): ClientView[] {
    const views: ClientView[] = []
    for (const id of this.#clients.ids()) {
      const client = this.#clients.get(id)
      if (client !== undefined) views.push(this.#view(client))
    }
    return views
  }

  get (clientId: string): ClientView {
    const client = this.#clients.get(clientId)
    if (client === undefined) throw notConnected(clientId)
    return this.#view(client)
  }

  async disconnect (clientId: string): Promise<void> {
    if (!await this.#clients.disconnect(clientId)) throw notConnected(clientId)
  }

  subscriptions (): SubscriptionView[] {
    return this.list().flatMap((c) => c.subscriptions)
  }

  #view (client: ConnectedClient): ClientView {
    const subscriptions = new Map<string, SubscriptionView>()
    for (const { topic, qos } of client.subscriptions) subscriptions.set(topic, { clientId: client.id, topic, qos })
    // Aedes keeps the literal `$share/` filter too; the groups' member lists
    // are the truth of who takes from a group, so none is left out.
    for (const group of this.#shared.groups()) {
      const qos = group.memberQos(client.id)
      if (qos === undefined) continue
      const topic = shareFilter(group.definition.group, group.definition.filter)
      if (!subscriptions.has(topic)) subscriptions.set(topic, { clientId: client.id, topic, qos })
    }
    return {
      clientId: client.id,
      username: client.username,
      address: client.address,
      connectedAt: new Date(client.connectedAt).toISOString(),
      keepaliveSeconds: client.keepaliveSeconds,
      cleanSession: client.clean,
      subscriptions: [...subscriptions.values()].sort((a, b) => (isShareTopic(a.topic) ? 1 : 0) - (isShareTopic(b.topic) ? 1 : 0) || a.topic.localeCompare(b.topic))
    }
  }
}

function notConnected (clientId: string): AdminError {
  return new AdminError(ErrorCodes.CLIENT_NOT_FOUND, `no client "${clientId}" is connected`)
}
