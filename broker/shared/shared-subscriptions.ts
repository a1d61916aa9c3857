import type { Logger } from 'pino'
import { Qlobber } from 'qlobber'
import { FleetqError, ErrorCodes } from '../../protocol/errors.js'
import type { Connection } from '../types/mqtt.js'
import { resolveGroupOptions, type SharedSubscriptionOptions } from './group-options.js'
import type { GroupDefinition, GroupStore } from './group-store.js'
import { isShareTopic, parseShareTopic, PREFETCH_TOPIC, topicMatches, type ShareTopic } from '../../protocol/topics.js'
import { SharedGroup, type GroupStats } from './shared-group.js'
import { FirstLevels } from './first-levels.js'
import { parseUntrustedJson } from '../untrusted-json.js'


const SWEEP_INTERVAL_MS = 1000

/** Topics whose matching groups are remembered; past it the memory starts afresh (a fleet of per-device topics must not grow it). */
const MATCH_CACHE_TOPICS = 1024

/**
 * `$share/{group}/{filter}` for MQTT 3.1.1 clients, which Aedes lacks
 * (moscajs/aedes#228). Aedes keeps the literal subscription (so persistent
 * sessions restore it and nothing is ever published to a `$share/` topic);
 * this class keeps the groups, their durable queues and their members.
 */
export class SharedSubscriptions {
  readonly #store: GroupStore & { flush?: () => Promise<void> }
  readonly #options: SharedSubscriptionOptions
  readonly #logger: Logger
  readonly #groups = new Map<string, SharedGroup>()
  readonly #matcher = new Qlobber<string>({ separator: '/', wildcard_one: '+', wildcard_some: '#', match_empty_levels: true })
  /** Asked before the matcher: most topics no group takes are told apart by their first level. */
  readonly #firstLevels = new FirstLevels()
  /**
   * The matcher's answer by topic, until a group is added or removed: a
   * task type's topic is routed for every submission (docs/benchmarks.md,
   * "CPU profiles"). Never mutated by a caller.
   */
  readonly #matchCache = new Map<string, readonly string[]>()
  readonly #memberships = new Map<Connection, Set<SharedGroup>>()
  readonly #prefetch = new Map<string, { all?: number, byGroup: Map<string, number> }>()
  readonly #sweep: NodeJS.Timeout
  #closed = false

  private constructor (store: GroupStore, options: SharedSubscriptionOptions, logger: Logger) {
    this.#store = store
    this.#options = options
    this.#logger = logger
    this.#sweep = setInterval(() => this.#sweepGroups(), SWEEP_INTERVAL_MS)
    this.#sweep.unref()
  }

  /** Loads every group and its queued messages from the store. */
  static async start (store: GroupStore, options: SharedSubscriptionOptions, logger: Logger): Promise<SharedSubscriptions> {
    const shared = new SharedSubscriptions(store, options, logger)
    let messages = 0
    for (const { definition, messages: queued } of await store.load()) {
      const group = shared.#addGroup(definition)
      group.restore(queued)
      messages += queued.length
    }
    if (shared.#groups.size > 0) logger.info({ groups: shared.#groups.size, messages }, 'shared subscription groups restored')
    return shared
  }

  /**
   * Checks a `$share/` filter and makes sure its group exists, durably,
   * before the SUBACK. Throws with the reason if the filter is not valid.
   */
  async prepare (topic: string): Promise<void> {
    const share = parseOrThrow(topic)
    if (this.#groups.has(share.key)) return
    const definition = { key: share.key, group: share.group, filter: share.filter, createdAt: Date.now() }
    await this.#store.saveGroup(definition)
    if (!this.#groups.has(share.key)) this.#addGroup(definition)
  }

  /** The client's subscription to `$share/...` is in place: it becomes a member. */
  join (client: Connection, topic: string, qos: number): void {
    const share = parseShareTopic(topic)
    if (typeof share === 'string' || this.#closed) return
    const group = this.#groups.get(share.key)
    if (group === undefined) {
      // restored from a session whose group was deleted meanwhile: recreate it
      this.prepare(topic).then(() => this.join(client, topic, qos), (err: unknown) => {
        this.#logger.error({ err, topic }, 'could not recreate a shared subscription group')
      })
      return
    }
    let groups = this.#memberships.get(client)
    if (groups === undefined) {
      groups = new Set()
      this.#memberships.set(client, groups)
    }
    groups.add(group)
    group.join(client, qos >= 1 ? 1 : 0, this.#prefetchFor(client.id, share.group))
  }

  leave (client: Connection, topic: string): void {
    const share = parseShareTopic(topic)
    if (typeof share === 'string') return
    const group = this.#groups.get(share.key)
    if (group === undefined) return
    group.leave(client)
    this.#memberships.get(client)?.delete(group)
  }

  /** The client disconnected: every group takes its unacknowledged messages back. */
  leaveAll (client: Connection): void {
    const groups = this.#memberships.get(client)
    if (groups === undefined) return
    this.#memberships.delete(client)
    for (const group of groups) group.leave(client)
  }

  /**
   * Queues the message in every matching group; resolves once each holds it.
   * Null when no group matches: nothing to wait for (the common case of
   * ordinary telemetry, answered without a microtask hop).
   * `checkedEnvelope`: the task gate checked the payload (GroupMessage).
   */
  route (topic: string, payload: Buffer, qos: number, checkedEnvelope = false): Promise<void> | null {
    if (this.#closed || !this.#firstLevels.mayMatch(topic) || isShareTopic(topic)) return null
    const keys = this.#match(topic)
    if (keys.length === 0) return null
    const work: Array<Promise<void>> = []
    for (const key of keys.length === 1 ? keys : new Set(keys)) {
      const group = this.#groups.get(key)
      if (group === undefined) continue
      // [MQTT-4.7.2-1] wildcards at the start do not match $ topics
      if (topic.charCodeAt(0) === 36 && !topicMatches(group.definition.filter, topic)) continue
      work.push(group.enqueue(topic, payload, qos >= 1 ? 1 : 0, checkedEnvelope))
    }
    if (work.length === 0) return null
    // One group (the usual case): its own promise, no Promise.all.
    return work.length === 1 ? work[0] as Promise<void> : Promise.all(work).then(() => undefined)
  }

  /**
   * Whether {@link route} would queue a message on `topic` in some group:
   * one trie lookup, for a caller on the message path (the adapter's
   * journal settlement) that must not walk every group's filter.
   */
  matches (topic: string): boolean {
    if (this.#closed || !this.#firstLevels.mayMatch(topic) || isShareTopic(topic)) return false
    for (const key of this.#match(topic)) {
      const group = this.#groups.get(key)
      if (group === undefined) continue
      // [MQTT-4.7.2-1] wildcards at the start do not match $ topics
      if (topic.charCodeAt(0) === 36 && !topicMatches(group.definition.filter, topic)) continue
      return true
    }
    return false
  }

  /** A PUBACK: true if it settled a group delivery. */
  ack (client: Connection, messageId: number): boolean {
    const groups = this.#memberships.get(client)
    if (groups === undefined) return false
    for (const group of groups) {
      if (group.ack(client, messageId)) return true
    }
    return false
  }

  /** Handles a member's `{"prefetch": n, "group"?: name}` on {@link PREFETCH_TOPIC}. */
  setPrefetch (client: Connection, payload: Buffer): void {
    const json = parseUntrustedJson(payload)
    if (!json.ok) {
      this.#logger.warn({ clientId: client.id, issue: json.issue }, `ignored ${PREFETCH_TOPIC}: not usable JSON`)
      return
    }
    const parsed = json.value
    // Valid JSON of another shape (null, 5, [], "x") is not a request either.
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      this.#logger.warn({ clientId: client.id }, `ignored ${PREFETCH_TOPIC}: not a JSON object`)
      return
    }
    const request = parsed as { prefetch?: unknown, group?: unknown }
    const prefetch = request.prefetch
    if (typeof prefetch !== 'number' || !Number.isInteger(prefetch) || prefetch < 1 || prefetch > 10_000) {
      this.#logger.warn({ clientId: client.id, prefetch }, `ignored ${PREFETCH_TOPIC}: prefetch must be an integer from 1 to 10000`)
      return
    }
    const group = typeof request.group === 'string' ? request.group : undefined
    let prefs = this.#prefetch.get(client.id)
    if (prefs === undefined) {
      prefs = { byGroup: new Map() }
      this.#prefetch.set(client.id, prefs)
    }
    if (group === undefined) prefs.all = prefetch
    else prefs.byGroup.set(group, prefetch)
    for (const g of this.#memberships.get(client) ?? []) {
      if (group === undefined || g.definition.group === group) g.setPrefetch(client, prefetch)
    }
  }

  forgetClient (clientId: string): void {
    this.#prefetch.delete(clientId)
  }

  stats (): GroupStats[] {
    return [...this.#groups.values()].map((g) => g.stats())
  }

  /** The group with this key (`{group}/{filter}`, as in GroupStats.key), or undefined. */
  group (key: string): SharedGroup | undefined {
    return this.#groups.get(key)
  }

  /** Every group, in creation order. */
  groups (): SharedGroup[] {
    return [...this.#groups.values()]
  }

  /**
   * Stops the group sending to its members, durably: it stays paused across
   * restarts until {@link resume} (docs/shared-subscriptions.md).
   */
  async pause (key: string): Promise<SharedGroup> {
    return await this.#setPaused(key, true)
  }

  async resume (key: string): Promise<SharedGroup> {
    return await this.#setPaused(key, false)
  }

  /** Drops every waiting message of the group (not those in flight); resolves with how many. */
  async purge (key: string): Promise<number> {
    return await this.#found(key).purge()
  }

  /**
   * Deletes a group and its queued messages. Refused while it has members
   * (they would recreate it at once); unsubscribe or disconnect them first.
   */
  async deleteGroup (group: string, filter: string): Promise<void> {
    await this.deleteGroupByKey(`${group}/${filter}`)
  }

  /** {@link deleteGroup} by the group's key. */
  async deleteGroupByKey (key: string): Promise<void> {
    const found = this.#groups.get(key)
    if (found === undefined) throw new FleetqError(ErrorCodes.GROUP_NOT_FOUND, `no shared subscription group ${key}`)
    if (found.memberCount > 0) {
      throw new FleetqError(ErrorCodes.GROUP_HAS_MEMBERS, `group ${key} has ${found.memberCount} member(s); they must leave first`)
    }
    this.#removeGroup(found)
    await this.#store.deleteGroup(key)
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#sweep)
    for (const group of this.#groups.values()) group.close()
    await this.#store.flush?.()
  }

  #found (key: string): SharedGroup {
    const group = this.#groups.get(key)
    if (group === undefined) throw new FleetqError(ErrorCodes.GROUP_NOT_FOUND, `no shared subscription group ${key}`)
    return group
  }

  /** In memory at once (no send after this), then stored with the definition; undone if the write fails. */
  async #setPaused (key: string, paused: boolean): Promise<SharedGroup> {
    const group = this.#found(key)
    const was = group.paused
    if (paused) group.pause()
    else group.resume()
    try {
      const definition: GroupDefinition = { ...group.definition }
      if (paused) definition.paused = true
      else delete definition.paused
      await this.#store.saveGroup(definition)
    } catch (err) {
      if (was) group.pause()
      else group.resume()
      throw err
    }
    this.#logger.info({ group: key, depth: group.depth }, paused ? 'shared subscription group paused' : 'shared subscription group resumed')
    return group
  }

  #addGroup (definition: GroupDefinition): SharedGroup {
    const group = new SharedGroup(definition, resolveGroupOptions(this.#options, definition.group), this.#store, this.#logger)
    this.#groups.set(definition.key, group)
    this.#matcher.add(definition.filter, definition.key)
    this.#firstLevels.add(definition.filter)
    this.#matchCache.clear()
    return group
  }

  #match (topic: string): readonly string[] {
    let keys = this.#matchCache.get(topic)
    if (keys === undefined) {
      keys = this.#matcher.match(topic)
      if (this.#matchCache.size >= MATCH_CACHE_TOPICS) this.#matchCache.clear()
      this.#matchCache.set(topic, keys)
    }
    return keys
  }

  #removeGroup (group: SharedGroup): void {
    group.close()
    this.#groups.delete(group.definition.key)
    this.#matcher.remove(group.definition.filter, group.definition.key)
    this.#firstLevels.remove(group.definition.filter)
    this.#matchCache.clear()
  }

  #prefetchFor (clientId: string, group: string): number | undefined {
    const prefs = this.#prefetch.get(clientId)
    return prefs?.byGroup.get(group) ?? prefs?.all
  }

  #sweepGroups (): void {
    const now = Date.now()
    for (const group of [...this.#groups.values()]) {
      group.sweep()
      const idle = group.options.idleTimeoutMs
      if (idle > 0 && group.idleSince !== null && now - group.idleSince > idle) {
        this.#logger.info({ group: group.definition.key, depth: group.depth }, 'deleting idle shared subscription group')
        this.#removeGroup(group)
        this.#store.deleteGroup(group.definition.key).catch((err: unknown) => {
          this.#logger.error({ err, group: group.definition.key }, 'could not delete an idle group')
        })
      }
    }
  }
}

function parseOrThrow (topic: string): ShareTopic {
  const share = parseShareTopic(topic)
  if (typeof share === 'string') throw new FleetqError(ErrorCodes.SHARE_TOPIC_INVALID, `${topic}: ${share}`)
  return share
}
