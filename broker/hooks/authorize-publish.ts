import type { Client, PublishPacket } from 'aedes'
import type { Logger } from 'pino'
import type { PublishJournal } from '../durability/publish-journal.js'
import type { DelayedMessages } from '../scheduler/delayed-messages.js'
import { DELAYED_DEAD_LETTER_TOPIC, isDelayedTopic, isShareTopic, parseDelayedTopic, SYS_PREFIX } from '../../protocol/topics.js'
import { deadLetterRecord } from '../tasks/dead-letter.js'
import type { GateDecision, TaskGate } from '../tasks/task-gate.js'

const DELAYED_CARRIER = Symbol('fleetq.delayedCarrier')

/**
 * A `$delayed/...` publish whose message is stored for later: Aedes still
 * acknowledges and "publishes" it, but nothing subscribes to `$delayed/`
 * (refused at subscribe) and `published` must not route it.
 */
export function isDelayedCarrier (packet: PublishPacket): boolean {
  return (packet as PublishPacket & { [DELAYED_CARRIER]?: true })[DELAYED_CARRIER] === true
}

export interface AuthorizePublishParts {
  journal: PublishJournal
  logger: Logger
  /** Set once the store is open; Aedes calls the hook only after listen. */
  tasks: () => TaskGate | undefined
  delayed: () => DelayedMessages | undefined
  maxDelaySeconds: number
  /** Whether this QoS 2 PUBLISH is a resend of one already received (stored until PUBREL). */
  isQos2Resend: (client: Client, packet: PublishPacket) => Promise<boolean>
}

type Callback = (error?: Error | null) => void

/**
 * Aedes's `authorizePublish`: access checks, then the task gate, then the
 * durable write, all before Aedes sends the PUBACK (DESIGN.md: Aedes 1.2
 * acknowledges before it stores). For `$delayed/{s}/{topic}` the checks and
 * the gate apply to `{topic}`, the topic the message will be published to.
 */
export function createAuthorizePublish (parts: AuthorizePublishParts) {
  const { journal, logger } = parts

  function accessError (client: Client | null, topic: string): Error | null {
    // Aedes's default: clients may not publish to $SYS/ topics.
    if (client !== null && topic.startsWith(SYS_PREFIX)) return new Error('$SYS/ topic is reserved')
    // A $share/ name is a subscription, never a topic (MQTT 5 §4.8.2).
    if (isShareTopic(topic)) return new Error('cannot publish to a $share/ topic')
    return null
  }

  function finish (packet: PublishPacket, client: Client | null, decision: GateDecision, write: Promise<void>, callback: Callback): void {
    write
      // The idempotency key is stored only after the message: a crash
      // between the two repeats a task rather than losing it.
      .then(() => decision.commit?.())
      .then(() => callback(null), (err: unknown) => {
        // refused after all: the publisher's resend must not count as a duplicate
        decision.release?.()
        logger.error({ err, clientId: client?.id, topic: packet.topic }, 'could not store a publish; not acknowledging it')
        callback(err as Error)
      })
  }

  /** The durable write of an ordinary publish: the journal, for a client's QoS 1 (the broker's own publishes are not journaled). */
  function journaled (packet: PublishPacket, client: Client | null): Promise<void> {
    return client === null ? Promise.resolve() : journal.record(packet)
  }

  /** Rewrites a refused delayed publish into a dead letter: acknowledged, kept, counted, never silently dropped. */
  function refuseDelayed (packet: PublishPacket, client: Client | null, reason: Parameters<DelayedMessages['refused']>[0], message: string): void {
    const raw = Buffer.isBuffer(packet.payload) ? packet.payload : Buffer.from(packet.payload)
    const record = { ...deadLetterRecord('delay-invalid', '$delayed', packet.topic, client?.id ?? null, [{ path: '', message, keyword: reason }], raw), refusal: reason }
    logger.warn({ clientId: client?.id, topic: packet.topic, reason }, 'delayed publish refused')
    parts.delayed()?.refused(reason)
    packet.topic = DELAYED_DEAD_LETTER_TOPIC
    packet.payload = Buffer.from(JSON.stringify(record))
    packet.retain = false
  }

  return function authorizePublish (client: Client | null, packet: PublishPacket, callback: Callback): void {
    const delayed = parts.delayed()
    if (delayed !== undefined && isDelayedTopic(packet.topic)) {
      const parsed = parseDelayedTopic(packet.topic, parts.maxDelaySeconds)
      if (!parsed.ok) {
        refuseDelayed(packet, client, parsed.reason, parsed.message)
      } else if (!delayed.hasRoom()) {
        refuseDelayed(packet, client, 'too-many-pending', 'too many delayed messages are waiting (delayed.maxPending)')
      } else {
        const denied = accessError(client, parsed.target)
        if (denied !== null) { callback(denied); return }
        // The gate sees the target as if it were published now, so an invalid
        // task is dead-lettered at once instead of failing at its time.
        const target = { topic: parsed.target, payload: packet.payload, qos: packet.qos, retain: packet.retain }
        const decision = parts.tasks()?.inspect(target, client?.id ?? null) ?? { action: 'pass' }
        if (decision.action === 'pass' || decision.action === 'wrapped') {
          const carrier = packet as PublishPacket & { [DELAYED_CARRIER]?: true }
          carrier[DELAYED_CARRIER] = true
          // Aedes looks for a QoS 2 resend only after this hook [MQTT-4.3.3-2]:
          // a resend before PUBREL must not store the message a second time.
          const resend = client !== null && packet.qos === 2 && packet.dup ? parts.isQos2Resend(client, packet) : Promise.resolve(false)
          // Read now: the carrier's own flags are changed below, before the write runs.
          const message = {
            topic: target.topic,
            payload: Buffer.isBuffer(target.payload) ? target.payload : Buffer.from(target.payload),
            qos: packet.qos,
            retain: packet.retain,
            clientId: client?.id ?? null
          }
          const write = resend.then((isResend) => isResend ? undefined : delayed.accept(message, parsed.delayMs))
          packet.retain = false // the target keeps its retain flag; `$delayed/...` itself is never retained
          finish(packet, client, decision, write, callback)
          return
        }
        // Dead-lettered or a duplicate: published now, rewritten by the gate.
        packet.topic = target.topic
        packet.payload = target.payload
        packet.retain = target.retain ?? false
        finish(packet, client, decision, journaled(packet, client), callback)
        return
      }
    }
    const denied = accessError(client, packet.topic)
    if (denied !== null) { callback(denied); return }
    // The gate runs before the journal, so what is journaled (and replayed
    // after a crash) is the rewritten packet: wrapped into an envelope,
    // dead-lettered or marked duplicate (docs/tasks.md).
    const decision = parts.tasks()?.inspect(packet, client?.id ?? null) ?? { action: 'pass' }
    finish(packet, client, decision, journaled(packet, client), callback)
  }
}
