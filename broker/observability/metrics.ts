import { collectDefaultMetrics, Counter, Gauge, Registry, type Metric } from 'prom-client'
import type { BrokerStats } from '../broker.js'
import type { SessionStats } from '../mqtt/adapter.js'
import { TASK_OUTCOMES } from '../tasks/task-outcomes.js'
import { persistenceWriteSeconds, type HistogramSnapshot } from './fixed-histogram.js'

/** Late ticks of periodic schedules (the scheduler's `stats().scheduler.lateness`, when it has it). */
interface Lateness { count: number, sumMs: number, maxMs: number }

/**
 * What the metrics read: the broker's stats, with the fields that reach them
 * through other work read only when present (`sessions` from the MQTT
 * adapter, `scheduler.lateness` from the scheduler).
 */
export type ObservedStats = BrokerStats & { sessions?: SessionStats }

const QOS_LABELS = ['0', '1', '2'] as const

/**
 * The broker's Prometheus metrics (docs/operations.md), read from
 * `broker.stats()` when scraped: nothing on the message path counts twice.
 * Names follow Prometheus conventions: `fleetq_` prefix, `_total` for
 * counters, base units. Process metrics (memory, CPU, event-loop lag) come
 * from prom-client's default collectors.
 */
export function createMetrics (stats: () => ObservedStats): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'fleetq_' })
  let snapshot: ObservedStats | null = null
  // One stats() per scrape, however many metrics read it.
  const current = (): ObservedStats => (snapshot ??= stats())

  type Read = (s: ObservedStats, set: (labels: Record<string, string>, value: number) => void) => void
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
  gauge('fleetq_connected_clients_max', 'Most clients connected at once since start.', [], (s, set) => { set({}, s.sessions?.maximumClients ?? s.connectedClients) })
  gauge('fleetq_client_sessions', 'Clients connected now plus persistent sessions whose client is away.', [], (s, set) => { if (s.sessions !== undefined) set({}, s.sessions.totalClients) })
  gauge('fleetq_subscriptions', 'Subscriptions of the clients connected now ($share/ ones included, one per member).', [], (s, set) => { if (s.sessions !== undefined) set({}, s.sessions.subscriptions) })
  gauge('fleetq_retained_messages', 'Retained messages stored.', [], (s, set) => { if (s.sessions !== undefined) set({}, s.sessions.retainedMessages) })
  // By QoS of the PUBLISH (`rate()` of the sum over qos is the message rate).
  counter('fleetq_messages_received_total', 'PUBLISH packets received from clients.', ['qos'], (s, set) => { byQos(s.traffic.byQos.messagesReceived, set) })
  counter('fleetq_messages_sent_total', 'PUBLISH packets sent to clients (shared-group deliveries included).', ['qos'], (s, set) => { byQos(s.traffic.byQos.messagesSent, set) })
  counter('fleetq_received_bytes_total', 'Payload bytes of the PUBLISH packets received from clients.', ['qos'], (s, set) => { byQos(s.traffic.byQos.bytesReceived, set) })
  counter('fleetq_sent_bytes_total', 'Payload bytes of the PUBLISH packets sent to clients.', ['qos'], (s, set) => { byQos(s.traffic.byQos.bytesSent, set) })
  // Per client would be a label value per client id: unbounded. The total and the largest queue instead.
  gauge('fleetq_queued_messages', 'Messages waiting for offline persistent-session clients.', [], (s, set) => {
    let sum = 0
    for (const id in s.queuedMessages) sum += s.queuedMessages[id] ?? 0
    set({}, sum)
  })
  gauge('fleetq_queued_messages_max', 'Messages waiting for the persistent-session client with the longest queue.', [], (s, set) => {
    let max = 0
    for (const id in s.queuedMessages) max = Math.max(max, s.queuedMessages[id] ?? 0)
    set({}, max)
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
  // event: enqueued, delivered, acked, redelivered, lateAcks, overflowed, expired, qos0Dropped (GroupCounters).
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
  counter('fleetq_tasks_total', 'Tasks by type and outcome: submitted, retried, invalid, duplicate at the gate; completed, failed from results; dead-lettered. Types without a schema count as "other".', ['type', 'outcome'], (s, set) => {
    for (const [type, counts] of Object.entries(s.tasks.byType)) {
      for (const outcome of TASK_OUTCOMES) set({ type, outcome }, counts[outcome])
    }
  })
  gauge('fleetq_delayed_pending', 'Delayed messages waiting for their time.', [], (s, set) => { set({}, s.delayed.pending) })
  counter('fleetq_delayed_messages_total', 'Delayed messages by event.', ['event'], (s, set) => {
    set({ event: 'accepted' }, s.delayed.accepted)
    set({ event: 'fired' }, s.delayed.fired)
    for (const [reason, value] of Object.entries(s.delayed.refused)) set({ event: `refused:${reason}` }, value)
  })
  gauge('fleetq_schedules', 'Periodic schedules.', [], (s, set) => { set({}, s.scheduler.schedules) })
  counter('fleetq_schedule_ticks_total', 'Periodic schedule ticks by event.', ['event'], (s, set) => {
    set({ event: 'fired' }, s.scheduler.fired)
    set({ event: 'skipped' }, s.scheduler.skipped)
  })
  gauge('fleetq_schedule_lateness_seconds_max', 'Latest a schedule tick fired after its time, since start.', [], (s, set) => {
    const lateness = latenessOf(s)
    if (lateness !== undefined) set({}, lateness.maxMs / 1000)
  })
  custom(registry, 'fleetq_schedule_lateness_seconds', 'How late schedule ticks fired after their time.', 'summary', () => {
    const lateness = latenessOf(current())
    return lateness === undefined
      ? []
      : [{ metricName: 'fleetq_schedule_lateness_seconds_sum', value: lateness.sumMs / 1000 }, { metricName: 'fleetq_schedule_lateness_seconds_count', value: lateness.count }]
  })
  custom(registry, 'fleetq_persistence_write_seconds', 'Seconds each LevelDB batch write took (one batch holds the writes of one event-loop turn).', 'histogram', () =>
    histogramValues('fleetq_persistence_write_seconds', persistenceWriteSeconds.snapshot()))
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

  function byQos (counts: readonly number[], set: (labels: Record<string, string>, value: number) => void): void {
    for (let qos = 0; qos < QOS_LABELS.length; qos++) set({ qos: QOS_LABELS[qos]! }, counts[qos] ?? 0)
  }

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

function latenessOf (s: ObservedStats): Lateness | undefined {
  const lateness = (s.scheduler as { lateness?: Partial<Lateness> }).lateness
  if (typeof lateness?.count !== 'number' || typeof lateness.sumMs !== 'number' || typeof lateness.maxMs !== 'number') return undefined
  return lateness as Lateness
}

interface Sample { metricName: string, labels?: Record<string, string>, value: number }

/**
 * A metric whose samples are written as they are at each scrape: a histogram
 * or summary kept elsewhere (a {@link FixedHistogram}, the scheduler's
 * lateness), which prom-client's own Histogram and Summary cannot be set
 * from. The registry reads any object with `get()` (prom-client's
 * Registry#getMetricsAsString): this is prom-client's "custom collector" shape.
 */
function custom (registry: Registry, name: string, help: string, type: 'histogram' | 'summary', samples: () => Sample[]): void {
  const metric = {
    name, help, type, aggregator: 'sum' as const,
    get: async () => ({ name, help, type, aggregator: 'sum' as const, values: samples() }),
    reset: () => undefined
  }
  registry.registerMetric(metric as unknown as Metric)
}

function histogramValues (name: string, h: HistogramSnapshot): Sample[] {
  const samples: Sample[] = h.bounds.map((bound, i) => ({ metricName: `${name}_bucket`, labels: { le: String(bound) }, value: h.cumulative[i]! }))
  samples.push({ metricName: `${name}_bucket`, labels: { le: '+Inf' }, value: h.count })
  samples.push({ metricName: `${name}_sum`, value: h.sum }, { metricName: `${name}_count`, value: h.count })
  return samples
}
