import type { Client, PublishPacket } from 'aedes'
import type { Logger } from 'pino'
import { DELAYED_DEAD_LETTER_TOPIC, isDelayedTopic, isShareTopic, parseDelayedTopic, SYS_PREFIX } from '../../../protocol/topics.js'
import type { PublishJournal } from '../../durability/publish-journal.js'
import type { DelayedMessages } from '../../scheduler/delayed-messages.js'
import { deadLetterRecord } from '../../tasks/dead-letter.js'
import type { SharedSubscriptions } from '../../shared/shared-subscriptions.js'
import { isCheckedEnvelope, type GateDecision, type TaskGate } from '../../tasks/task-gate.js'
import type { AccessPolicy } from '../access.js'
import type { ClientLimits } from '../client-limits.js'
import { illFormedTopic } from '../topic-validity.js'
import { connFields } from '../internals/conn-ids.js'
import { clientInfo, toBuffer } from './util.js'

const DELAYED_CARRIER = Symbol('fleetq.delayedCarrier')
const ROUTED_AT_GATE = Symbol('fleetq.routedAtGate')

/**
 * A client's QoS 1 publish whose shared groups authorizePublish already
 * handled before the PUBACK: it queued the message in each matching group,
 * or found none. `published` must not queue it again, nor look the topic up
 * a second time (one trie match per publish, not two: docs/benchmarks.md).
 */
export function isRoutedAtGate (packet: PublishPacket): boolean {
  return (packet as PublishPacket & { [ROUTED_AT_GATE]?: true })[ROUTED_AT_GATE] === true
}

/**
 * A `$delayed/...` publish whose message is stored for later: Aedes still
 * acknowledges and "publishes" it, but nothing subscribes to `$delayed/`
 * (refused at subscribe) and `published` must not route it.
 */
export function isDelayedCarrier (packet: PublishPacket): boolean {
  return (packet as PublishPacket & { [DELAYED_CARRIER]?: true })[DELAYED_CARRIER] === true
}

export interface AuthorizePublishParts {
  access: Pick<AccessPolicy, 'authorizePublish'>
  gate: Pick<TaskGate, 'inspect'>
  delayed: Pick<DelayedMessages, 'hasRoom' | 'accept' | 'refused'>
  journal: Pick<PublishJournal, 'record'>
  /**
   * Whether a client's QoS 1 publish is journaled: when the retained store
   * or a persistent session's queue keeps it (broker/durability/durable-destinations.ts).
   * A shared group's queue keeps its own copy, appended here.
   */
  needsJournal: (packet: PublishPacket) => boolean
  groups: Pick<SharedSubscriptions, 'route'>
  limits: Pick<ClientLimits, 'topicRefusal' | 'publish'>
  logger: Logger
  maxDelaySeconds: number
  /** Whether this QoS 2 PUBLISH is a resend of one already received (stored until PUBREL). */
  isQos2Resend: (client: Client, packet: PublishPacket) => Promise<boolean>
}

/** What `finish` answers once a publish is stored: no error. */
function stored (): null {
  return null
}

/**
 * Aedes's `authorizePublish`: the client's limits (publish rate, topic
 * size), access checks, then the task gate, then the
 * durable write, all before Aedes sends the PUBACK (docs/durability.md: Aedes
 * 1.2 acknowledges before it stores). For `$delayed/{s}/{topic}` the checks
 * and the gate apply to `{topic}`, the topic the message will be published to.
 * Resolves with the error to refuse the publish with (the client is then
 * disconnected), or null.
 */
export function createAuthorizePublish (parts: AuthorizePublishParts) {
  const { access, gate, delayed, journal, needsJournal, groups, logger } = parts

  /** Synchronous when the policy answers synchronously (allow-all does): the common publish takes no microtask hop. */
  function accessError (client: Client | null, topic: string): Error | null | Promise<Error | null> {
    // Aedes's default: clients may not publish to $SYS/ topics.
    if (client !== null && topic.startsWith(SYS_PREFIX)) return new Error('$SYS/ topic is reserved')
    // A $share/ name is a subscription, never a topic (MQTT 5 §4.8.2).
    if (isShareTopic(topic)) return new Error('cannot publish to a $share/ topic')
    if (client === null) return null
    const verdict = access.authorizePublish(clientInfo(client), topic)
    if (typeof verdict === 'boolean') return verdict ? null : notAuthorized(topic)
    return verdict.then((allowed) => allowed ? null : notAuthorized(topic))
  }

  function notAuthorized (topic: string): Error {
    return new Error(`not authorized to publish to ${topic}`)
  }

  /**
   * Null once the write (and the idempotency key's commit) landed; the error
   * otherwise. Promise chains, not an async function: this runs for every
   * task submitted, and the async function's own promise and awaits were
   * about 0.7 KB of garbage each time (docs/benchmarks.md).
   */
  function finish (packet: PublishPacket, client: Client | null, decision: GateDecision, write: Promise<void>): Promise<Error | null> {
    const failed = (err: unknown): Error => {
      // refused after all: the publisher's resend must not count as a duplicate
      decision.release?.()
      logger.error({ err, ...connFields(client), topic: packet.topic }, 'could not store a publish; not acknowledging it')
      return err as Error
    }
    const commit = decision.commit
    if (commit === undefined) return write.then(stored, failed)
    // The idempotency key is stored only after the message: a crash
    // between the two repeats a task rather than losing it.
    return write.then(() => commit.call(decision)).then(stored, failed)
  }

  /**
   * The durable write of an ordinary publish, for a client's QoS 1 that has a
   * durable destination: its groups' appends and/or a journal entry; null
   * when there is none. The broker's own publishes are not written here, nor
   * is a publish that only live clean sessions receive: a replay after a
   * crash could reach none of them (docs/durability.md, "What is journaled").
   */
  function durableWrite (packet: PublishPacket, client: Client | null): Promise<void> | null {
    if (client === null || packet.qos !== 1) return null
    // A group's append is the durable copy of a message in its queue
    // (docs/durability.md, "Stored by its group"): made now, before the
    // PUBACK, instead of a journal entry, and not again in `published`.
    // Every QoS 1 client publish a group matches is queued here, so the
    // groups see one publisher's messages in the order they were authorized.
    // null when no group matches: route's own lookup is the only one, and
    // the mark tells `published` (and the journal settlement) not to repeat it.
    const routed = groups.route(packet.topic, toBuffer(packet.payload), 1, isCheckedEnvelope(packet))
    ;(packet as PublishPacket & { [ROUTED_AT_GATE]?: true })[ROUTED_AT_GATE] = true
    const written = needsJournal(packet) ? journal.record(packet) : null
    if (routed === null) return written
    return written === null ? routed : Promise.all([routed, written]).then(() => undefined)
  }

  /**
   * After the access check: the gate, then the durable write. Answers at once
   * (null) when nothing is written and no idempotency key waits for a commit:
   * QoS 0, the broker's own publishes, a QoS 1 only clean sessions receive.
   */
  function gateAndJournal (client: Client | null, packet: PublishPacket): Error | null | Promise<Error | null> {
    // The gate runs before the durable write, so what is stored (and
    // replayed after a crash) is the rewritten packet: wrapped into an
    // envelope, dead-lettered or marked duplicate (docs/tasks.md).
    const decision = gate.inspect(packet, client?.id ?? null)
    const write = durableWrite(packet, client)
    if (write === null && decision.commit === undefined) return null
    return finish(packet, client, decision, write ?? Promise.resolve())
  }

  /** Rewrites a refused delayed publish into a dead letter: acknowledged, kept, counted, never silently dropped. */
  function refuseDelayed (packet: PublishPacket, client: Client | null, reason: Parameters<DelayedMessages['refused']>[0], message: string): void {
    const record = { ...deadLetterRecord('delay-invalid', '$delayed', packet.topic, client?.id ?? null, [{ path: '', message, keyword: reason }], toBuffer(packet.payload)), refusal: reason }
    logger.warn({ ...connFields(client), topic: packet.topic, reason }, 'delayed publish refused')
    delayed.refused(reason)
    packet.topic = DELAYED_DEAD_LETTER_TOPIC
    packet.payload = Buffer.from(JSON.stringify(record))
    packet.retain = false
  }

  return function authorizePublish (client: Client | null, packet: PublishPacket): Error | null | Promise<Error | null> {
    if (client !== null) {
      parts.limits.publish(client)
      const limit = parts.limits.topicRefusal(client.id, packet.topic)
      if (limit !== null) return new Error(`topic over limits.${limit}`)
      const illFormed = illFormedTopic(packet.topic)
      if (illFormed !== null) return new Error(illFormed)
    }
    if (isDelayedTopic(packet.topic)) return authorizeDelayed(client, packet)
    const denied = accessError(client, packet.topic)
    if (denied instanceof Promise) return denied.then((error) => error ?? gateAndJournal(client, packet))
    return denied ?? gateAndJournal(client, packet)
  }

  /** `$delayed/{seconds}/{topic}`: checked and stored now for later, or rewritten to a dead letter and published now. */
  async function authorizeDelayed (client: Client | null, packet: PublishPacket): Promise<Error | null> {
    const parsed = parseDelayedTopic(packet.topic, parts.maxDelaySeconds)
    if (!parsed.ok) {
      // Even a refused delay becomes a record only for a client that may
      // publish where it meant to (or, with no usable target, to the topic it used).
      const denied = await accessError(client, parsed.target === '' || parsed.reason === 'target-invalid' ? packet.topic : parsed.target)
      if (denied !== null) return denied
      refuseDelayed(packet, client, parsed.reason, parsed.message)
    } else if (!delayed.hasRoom()) {
      const denied = await accessError(client, parsed.target)
      if (denied !== null) return denied
      refuseDelayed(packet, client, 'too-many-pending', 'too many delayed messages are waiting (delayed.maxPending)')
    } else {
      const denied = await accessError(client, parsed.target)
      if (denied !== null) return denied
      // The gate sees the target as if it were published now, so an invalid
      // task is dead-lettered at once instead of failing at its time.
      const target = { topic: parsed.target, payload: packet.payload, qos: packet.qos, retain: packet.retain }
      const decision = gate.inspect(target, client?.id ?? null)
      if (decision.action === 'pass' || decision.action === 'wrapped') {
        const carrier = packet as PublishPacket & { [DELAYED_CARRIER]?: true }
        carrier[DELAYED_CARRIER] = true
        // Aedes looks for a QoS 2 resend only after this hook [MQTT-4.3.3-2]:
        // a resend before PUBREL must not store the message a second time.
        const resend = client !== null && packet.qos === 2 && packet.dup ? parts.isQos2Resend(client, packet) : Promise.resolve(false)
        // Read now: the carrier's own flags are changed below, before the write runs.
        const message = { topic: target.topic, payload: toBuffer(target.payload), qos: packet.qos, retain: packet.retain, clientId: client?.id ?? null }
        const write = resend.then((isResend) => isResend ? undefined : delayed.accept(message, parsed.delayMs))
        packet.retain = false // the target keeps its retain flag; `$delayed/...` itself is never retained
        return await finish(packet, client, decision, write)
      }
      // Dead-lettered or a duplicate: published now, rewritten by the gate.
      packet.topic = target.topic
      packet.payload = target.payload
      packet.retain = target.retain ?? false
      return await finish(packet, client, decision, durableWrite(packet, client) ?? Promise.resolve())
    }
    // A refused delay, now a dead letter on $fleetq/dead/$delayed: published now.
    return await gateAndJournal(client, packet)
  }
}
