// First: mqtt-packet's loggers are made when it loads (broker/mqtt/internals/quiet-debug.ts).
import './mqtt/internals/quiet-debug.js'
import { randomUUID } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { TaskSchemas } from '../protocol/schema-registry.js'
import { DEAD_LETTER_GROUP, DEAD_LETTER_PREFIX, shareFilter, taskTopic } from '../protocol/topics.js'
import { Broker, type BrokerInternals } from './broker.js'
import { Closers } from './closers.js'
import { PublishJournal } from './durability/publish-journal.js'
import { configuredListeners, openExtraListeners, prepareTls, type ListenerInfo } from './listeners/index.js'
import { HttpAccess } from './http/access.js'
import { listenTcp } from './listeners/tcp.js'
import { SysTopics } from './observability/sys-topics.js'
import { FLEETQ_VERSION } from './version.js'
import { createLogger } from './logger.js'
import { MqttAdapter } from './mqtt/index.js'
import { resolveBrokerOptions, type BrokerOptions } from './options.js'
import { createStores } from './persistence/open-persistence.js'
import { Authenticator, withAuthentication } from './security/authenticator.js'
import { ConnectionLimits } from './security/connection-limits.js'
import { LimitCounters } from './security/limit-counters.js'
import { TopicAccess } from './security/topic-access.js'
import { systemClock } from './scheduler/clock.js'
import { DelayedMessages } from './scheduler/delayed-messages.js'
import { Scheduler } from './scheduler/scheduler.js'
import { SharedSubscriptions } from './shared/shared-subscriptions.js'
import { TaskGate } from './tasks/task-gate.js'

export type { BrokerOptions, DelayedOptions, LogLevel, PersistenceKind, TaskOptions } from './options.js'
export type { DelayedStats, DelayedRefusal } from './scheduler/delayed-messages.js'
export type { SchedulerStats } from './scheduler/scheduler.js'
export type { CatchUp, ScheduleInfo, ScheduleInput } from '../protocol/schedules.js'
export { ManualClock, type Clock } from './scheduler/clock.js'
export {
  delayedTopic, DELAYED_PREFIX, DELAYED_DEAD_LETTER_TOPIC, DEAD_LETTER_GROUP, SCHEDULE_REQUEST_TOPIC, REPLIES_PREFIX, PREFETCH_TOPIC,
  taskTopic, taskShareFilter, resultTopic, deadLetterTopic
} from '../protocol/topics.js'
export { envelopeDefaults } from '../protocol/envelope.js'
export type { GateDeadLetter, GateDeadLetterReason } from '../protocol/messages.js'
export type { TaskGateStats } from './tasks/task-gate.js'
export type { AuthStats } from './security/authenticator.js'
export type { AccessStats } from './security/topic-access.js'
export type { LimitName, LimitStats } from './security/limit-counters.js'
export type { DispatchStrategy, GroupOptions, OverflowPolicy, SharedSubscriptionOptions } from './shared/group-options.js'
export type { GroupCounters, GroupStats, MemberStats } from './shared/shared-group.js'
export { brokerDefaults } from './options.js'
export * from '../protocol/errors.js'

export { Broker, type BrokerEvents, type BrokerSchedules, type BrokerStats } from './broker.js'
export type { ListenerInfo, ListenerKind } from './listeners/index.js'

/**
 * Starts a broker: opens the store, replays the publish journal, then listens.
 * Resolves once the broker accepts connections.
 */
export async function createBroker (options: BrokerOptions = {}, internals: BrokerInternals = {}): Promise<Broker> {
  const startedAt = Date.now()
  const resolved = resolveBrokerOptions(options)
  const logger = resolved.logger ?? createLogger(resolved.logLevel, resolved.logFormat)
  const clock = resolved.clock ?? systemClock
  // Schemas first: a bad schema stops the broker before it opens anything.
  const { schemasDir, includeExamples, allowUnknownTypes, maxPayloadBytes, ...gateOptions } = resolved.tasks
  const schemas = await TaskSchemas.load({ dir: schemasDir, includeExamples, allowUnknownTypes, maxPayloadBytes })
  // The users file too, and whether the broker may listen where it is asked to without one (docs/security.md).
  const auth = await Authenticator.create({ ...resolved.auth, certificateIdentity: resolved.tls.certificateIdentity },
    { logger, hosts: [...new Set([resolved.host, ...configuredListeners(resolved).map((l) => l.host)])] })
  // And the ACL file: a bad line stops the broker, naming it.
  const { usersFile, aclFile, admins } = resolved.auth
  // The HTTP listener (only with a port, and not when turned off): an open admin API stays on loopback.
  const httpPort = resolved.http.enabled === false ? undefined : resolved.http.port
  const httpHost = resolved.http.host ?? '127.0.0.1'
  if (httpPort !== undefined) HttpAccess.checkHost(httpHost, usersFile)
  const topicAccess = await TopicAccess.create({ aclFile, admins: admins ?? [], secured: usersFile !== undefined || aclFile !== undefined || resolved.tls.certificateIdentity === true }, logger)
  const limits = new LimitCounters(logger)
  // The TLS certificate and key too: a bad file stops the broker before it opens anything.
  const tlsMaterial = await prepareTls(resolved)
  // From here on, whatever is opened is closed again if a later step fails.
  const closers = new Closers()
  try {
    // Opens the database now, so a locked or unwritable data directory is reported as such.
    const stores = await createStores(resolved, logger)
    const persistence = stores.persistence
    closers.add('store', 'store', () => persistence.destroy())
    // The services need the store, not Aedes: they exist before it, so its hooks are bound to them.
    const tasks = await TaskGate.create({ ...gateOptions, schemas, store: stores.idempotency, logger, limits })
    persistence.on('queue-overflow', (clientId: string, topic: string) => { limits.hit('maxQueuedPerClient', clientId, { topic, max: resolved.maxQueuedPerClient }) })
    closers.add('services', 'task gate', () => tasks.close())
    const shared = await SharedSubscriptions.start(stores.groups, resolved.shared, logger)
    closers.add('services', 'shared groups', () => shared.close())
    await prepareDefaultGroups(shared, schemas, gateOptions)
    const { connectTimeoutMs, maxInflightInbound, maxPacketBytes, maxConnections, maxConnectionsPerAddress, connectsPerSecondPerAddress, ...clientLimits } = resolved.limits
    const mqtt = new MqttAdapter({
      id: resolved.id ?? randomUUID(), persistence, logger, ...internals,
      access: internals.access ?? withAuthentication(auth, topicAccess),
      clientLimits, connectTimeoutMs, maxInflightInbound, limits, maxPacketBytes
    })
    closers.add('intake', 'mqtt start', () => mqtt.abandon())
    // Delayed messages due at start wait in mqtt.publish() until Aedes is up.
    const delayed = await DelayedMessages.start({
      store: stores.delayed, clock, logger, maxPending: resolved.delayed.maxPending,
      publish: (m) => mqtt.publish({ cmd: 'publish', topic: m.topic, payload: m.payload, qos: m.qos, retain: m.retain, dup: false })
    })
    closers.add('timers', 'delayed messages', () => delayed.close())
    const scheduler = await Scheduler.start({ store: stores.schedules, delayed, schemas, clock, logger, fromConfig: resolved.schedules, taskTopicPrefix: gateOptions.topicPrefix })
    closers.add('timers', 'scheduler', () => scheduler.close())
    const journal = new PublishJournal(stores.journal, logger)
    closers.add('drain', 'publish journal', () => journal.drain())
    closers.add('mqtt', 'aedes', () => mqtt.close())
    await mqtt.start({ gate: tasks, groups: shared, delayed, journal, schedules: scheduler, maxDelaySeconds: resolved.delayed.maxDelaySeconds })
    await journal.replay((packet) => mqtt.publish(packet))
    // Checked as each TCP connection is accepted, on every listener, before a byte of it is read (TLS handshakes and HTTP upgrades included).
    const connectionLimits = new ConnectionLimits({ maxConnections, maxConnectionsPerAddress, connectsPerSecondPerAddress }, limits)
    const intake = { connections: connectionLimits, counters: limits, connectTimeoutMs, maxPacketBytes }
    const handle = (stream: Duplex): void => { mqtt.handle(stream) }
    const listener = await listenTcp(handle, resolved.port, resolved.host, intake)
    closers.add('intake', 'listener', () => { void listener.close() })
    closers.add('connections', 'listener', () => listener.close())
    const extra = await openExtraListeners(resolved, tlsMaterial, handle, intake, closers, logger)
    const listeners: ListenerInfo[] = [{ kind: 'mqtt' as const, host: listener.address.address, port: listener.address.port }, ...extra]
    const broker = new Broker({
      mqtt, listener, listeners, persistence, shared, tasks, delayed, scheduler, auth, topicAccess, limits, logger, closers,
      taskTopics: { topicPrefix: gateOptions.topicPrefix, deadLetterPrefix: gateOptions.deadLetterPrefix }, startedAt
    })
    if (resolved.sysIntervalSeconds > 0) {
      const sys = new SysTopics({
        publish: (topic, payload) => mqtt.publish({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 0, retain: true, dup: false }),
        // Only the three figures it publishes: broker.stats() walks every group and store.
        stats: () => ({ connectedClients: broker.aedes.connectedClients, traffic: mqtt.traffic, sessions: mqtt.sessionStats() }),
        version: FLEETQ_VERSION, intervalMs: resolved.sysIntervalSeconds * 1000, logger
      })
      closers.add('timers', '$SYS topics', () => sys.close())
      sys.start()
    }
    if (httpPort !== undefined) {
      // Ready from here until close() begins (docs/operations.md).
      let ready = true
      closers.add('intake', 'readiness', () => { ready = false })
      // The HTTP server, its routes and prom-client are loaded only with the HTTP listener on:
      // several MB of RSS a broker without it need not hold (docs/benchmarks.md, "The broker's RSS").
      const [{ listenHttp }, { createMetrics }] = await Promise.all([import('./http/server.js'), import('./observability/metrics.js')])
      const http = await listenHttp({
        admin: broker.admin, metrics: createMetrics(() => broker.stats()), ready: () => ready,
        access: new HttpAccess({ auth, admins: admins ?? [], token: resolved.http.token, logger }), logger, version: FLEETQ_VERSION
      }, httpPort, httpHost)
      // Open event streams end with the intake, so they hold nothing up; the sockets go with the other connections.
      closers.add('intake', 'http event streams', () => { http.endStreams() })
      closers.add('connections', 'http listener', () => http.close())
      listeners.push({ kind: 'http', host: http.address.address, port: http.address.port })
    }
    auth.announce()
    topicAccess.announce()
    logger.info({
      url: broker.url, persistence: resolved.persistence, dataDir: resolved.persistence === 'level' ? resolved.dataDir : undefined,
      ...(listeners.length > 1 ? { listeners: listeners.slice(1) } : {})
    }, 'broker listening')
    return broker
  } catch (err) {
    await closers.close()
    throw err
  }
}

/**
 * Dead letters are stored even before anyone subscribes to them, and so are
 * tasks submitted before their first worker: each known task type has its
 * default group, `$share/{type}/tasks/{type}` (docs/tasks.md).
 */
async function prepareDefaultGroups (shared: SharedSubscriptions, schemas: TaskSchemas, { topicPrefix, deadLetterPrefix }: { topicPrefix: string, deadLetterPrefix: string }): Promise<void> {
  await shared.prepare(DEAD_LETTER_GROUP)
  if (deadLetterPrefix !== DEAD_LETTER_PREFIX) await shared.prepare(shareFilter('dead-letters', `${deadLetterPrefix}+`))
  for (const type of schemas.types()) await shared.prepare(shareFilter(type, taskTopic(type, topicPrefix)))
}
