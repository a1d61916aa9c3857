import { AdminError, ErrorCodes, FleetqError } from '../../protocol/errors.js'
import type { SharedGroup } from '../shared/shared-group.js'
import type { SharedSubscriptions } from '../shared/shared-subscriptions.js'
import type { GroupView } from './admin-api.js'

/** Shared-subscription groups (`/api/groups`), addressed by their key `{group}/{filter}`. */
export class GroupAdmin {
  readonly #shared: SharedSubscriptions

  constructor (shared: SharedSubscriptions) {
    this.#shared = shared
  }

  list (): GroupView[] {
    return this.#shared.groups().map(view).sort((a, b) => a.key.localeCompare(b.key))
  }

  get (key: string): GroupView {
    return view(this.#found(key))
  }

  async pause (key: string): Promise<GroupView> {
    this.#found(key)
    return view(await this.#shared.pause(key))
  }

  async resume (key: string): Promise<GroupView> {
    this.#found(key)
    return view(await this.#shared.resume(key))
  }

  async purge (key: string): Promise<{ purged: number }> {
    this.#found(key)
    return { purged: await this.#shared.purge(key) }
  }

  async delete (key: string): Promise<void> {
    this.#found(key)
    try {
      await this.#shared.deleteGroupByKey(key)
    } catch (err) {
      // Gone meanwhile (idle sweep): as not found. FLEETQ_GROUP_HAS_MEMBERS passes on as it is.
      if (err instanceof FleetqError && err.code === ErrorCodes.GROUP_NOT_FOUND) throw notFound(key)
      throw err
    }
  }

  #found (key: string): SharedGroup {
    const group = this.#shared.group(key)
    if (group === undefined) throw notFound(key)
    return group
  }
}

function notFound (key: string): AdminError {
  return new AdminError(ErrorCodes.GROUP_NOT_FOUND, `no shared subscription group "${key}"`)
}

function view (group: SharedGroup): GroupView {
  const stats = group.stats()
  return {
    key: stats.key,
    group: stats.group,
    filter: stats.filter,
    strategy: stats.strategy,
    paused: stats.paused,
    depth: stats.depth,
    inflight: stats.inflight,
    oldestAgeMs: stats.oldestEnqueuedAt === null ? null : Math.max(0, Date.now() - stats.oldestEnqueuedAt),
    members: stats.members,
    counters: stats.counters,
    createdAt: new Date(stats.createdAt).toISOString()
  }
}
