import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client'
import type { BrokerStats } from '../broker.js'

/**
 * The broker's Prometheus metrics (docs/operations.md), read from
 * `broker.stats()` when scraped: nothing on the message path counts twice.
 * Names follow Prometheus conventions: `fleetq_` prefix, `_total` for
 * counters, base units. Process metrics (memory, CPU, event-loop lag) come
 * from prom-client's default collectors.
 */
export function createMetrics (stats: () => BrokerStats): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'fleetq_' })
  let snapshot: BrokerStats | null = null
  // One stats() per scrape, however many metrics read it.
  const current = (): BrokerStats => (snapshot ??= stats())

  type Read = (s: BrokerStats, set: (labels: Record<string, string>, value: number) => void) => void
  /** A metric whose values are set from the snapshot at each scrape: a gauge, or a counter (which only stats() ever raises). */
  const define = (kind: 'gauge' | 'counter', name: string, help: string, labelNames: readonly string[], read: Read): void => {
    const collect = function (this: Gauge | Counter): void {
      this.reset()
      read(current(), (labels, value) => { if (this instanceof Gauge) this.set(labels, value); else this.inc(labels, value) })
    }
    if (kind === 'gauge') registry.registerMetric(new Gauge({ name, help, labelNames, registers: [], collect }))
    else registry.registerMetric(new Counter({ name, help, labelNames, registers: [], collect }))
  }
  const gauge = (name: string, help: string, labelNames: readonly string[], read: Read): void => { define('gauge', name, help, labelNames, read) }
  const counter = (name: string, help: string, labelNames: readonly string[], read: Read): void => { define('counter', name, help, labelNames, read) }

  gauge('fleetq_connected_clients', 'Clients connected now.', [], (s, set) => { set({}, s.connectedClients) })
  gauge('fleetq_queued_messages', 'Messages waiting for offline persistent-session clients.', [], (s, set) => {
    set({}, Object.values(s.queuedMessages).reduce((sum, n) => sum + n, 0))
  })
  counter('fleetq_dropped_messages_total', 'Messages dropped at the per-client queue bound.', [], (s, set) => { set({}, s.droppedMessages) })
  gauge('fleetq_shared_group_depth', 'Messages waiting in a shared group.', ['group', 'filter'], (s, set) => {
    for (const g of s.sharedGroups) set({ group: g.group, filter: g.filter }, g.depth)
  })
  gauge('fleetq_shared_group_inflight', 'Messages sent to a group member and not yet acknowledged.', ['group', 'filter'], (s, set) => {
    for (const g of s.sharedGroups) set({ group: g.group, filter: g.filter }, g.inflight)
  })
  gauge('fleetq_shared_group_members', 'Members of a shared group.', ['group', 'filter'], (s, set) => {
    for (const g of s.sharedGroups) set({ group: g.group, filter: g.filter }, g.members.length)
  })
  counter('fleetq_shared_group_messages_total', 'Shared-group messages by what happened to them.', ['group', 'filter', 'event'], (s, set) => {
    for (const g of s.sharedGroups) {
      for (const [event, value] of Object.entries(g.counters)) set({ group: g.group, filter: g.filter, event }, value)
    }
  })
  counter('fleetq_task_submissions_total', 'Task submissions at the broker by outcome.', ['outcome'], (s, set) => {
    set({ outcome: 'accepted' }, s.tasks.accepted)
    set({ outcome: 'wrapped' }, s.tasks.wrapped)
    set({ outcome: 'invalid' }, s.tasks.invalid)
    set({ outcome: 'duplicate' }, s.tasks.duplicates)
  })
  gauge('fleetq_delayed_pending', 'Delayed messages waiting for their time.', [], (s, set) => { set({}, s.delayed.pending) })
  counter('fleetq_delayed_messages_total', 'Delayed messages by event.', ['event'], (s, set) => {
    set({ event: 'accepted' }, s.delayed.accepted)
    set({ event: 'fired' }, s.delayed.fired)
    for (const [reason, value] of Object.entries(s.delayed.refused)) set({ event: `refused:${reason}` }, value)
  })
  counter('fleetq_auth_connects_total', 'CONNECTs by authentication result.', ['result'], (s, set) => {
    set({ result: 'accepted' }, s.auth.accepted)
    set({ result: 'refused' }, s.auth.refused)
  })
  counter('fleetq_access_denied_total', 'Publishes, subscriptions and deliveries refused by the access rules.', ['operation'], (s, set) => {
    set({ operation: 'publish' }, s.access.publishDenied)
    set({ operation: 'subscribe' }, s.access.subscribeDenied)
    set({ operation: 'receive' }, s.access.receiveDenied)
  })
  counter('fleetq_limit_hits_total', 'Times each limit was hit (docs/security.md#limits).', ['limit'], (s, set) => {
    for (const [limit, value] of Object.entries(s.limits)) set({ limit }, value)
  })
  counter('fleetq_client_errors_total', 'Connections closed for what their client sent.', [], (s, set) => { set({}, s.clientErrors) })
  counter('fleetq_hook_errors_total', 'Exceptions caught in the broker\'s MQTT hooks.', [], (s, set) => { set({}, s.hookErrors) })

  // The snapshot lives for one scrape.
  const metrics = registry.metrics.bind(registry)
  registry.metrics = async () => {
    snapshot = null
    try {
      return await metrics()
    } finally {
      snapshot = null
    }
  }
  return registry
}
