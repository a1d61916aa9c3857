import type { AedesPublishPacket, Client } from 'aedes'
import type { Logger } from 'pino'
import { PREFETCH_TOPIC, SCHEDULE_REQUEST_TOPIC } from '../../../protocol/topics.js'
import type { PublishJournal } from '../../durability/publish-journal.js'
import type { SharedSubscriptions } from '../../shared/shared-subscriptions.js'
import type { Connection } from '../../types/mqtt.js'
import { isCheckedEnvelope } from '../../tasks/task-gate.js'
import { isDelayedCarrier, isRoutedAtGate } from './authorize-publish.js'
import { toBuffer } from './util.js'

export interface PublishedParts {
  groups: Pick<SharedSubscriptions, 'route' | 'setPrefetch'>
  journal: Pick<PublishJournal, 'settle'>
  logger: Logger
  connectionOf: (client: Client) => Connection
  /** A `$fleetq/schedules/request` from a client; answered on its reply topic. */
  scheduleRequest: (client: Client, payload: Buffer) => void
}

/**
 * Aedes's `published`, once the message is stored for persistent sessions
 * and handed to live subscribers: broker commands (prefetch, schedule
 * requests), then the shared groups (unless authorizePublish queued it there
 * already: a client's QoS 1), then the journal entry goes.
 * Resolves with the error of a failed group write (the journal entry stays:
 * the message is routed again on the next start), or null.
 */
export function createPublished ({ groups, journal, logger, connectionOf, scheduleRequest }: PublishedParts) {
  return function published (packet: AedesPublishPacket, client: Client | null): Error | null | Promise<Error | null> {
    if (client !== null && packet.topic === PREFETCH_TOPIC) groups.setPrefetch(connectionOf(client), toBuffer(packet.payload))
    if (client !== null && packet.topic === SCHEDULE_REQUEST_TOPIC) scheduleRequest(client, toBuffer(packet.payload))
    // Stored for later, or its groups handled already (queued in each, or none matched) by authorizePublish: nothing to route now.
    if (isDelayedCarrier(packet) || isRoutedAtGate(packet)) {
      journal.settle(packet)
      return null
    }
    // The journal entry goes only once every group holds the message.
    const held = groups.route(packet.topic, toBuffer(packet.payload), packet.qos, isCheckedEnvelope(packet))
    if (held === null) {
      journal.settle(packet)
      return null
    }
    return held.then(() => {
      journal.settle(packet)
      return null
    }, (err: unknown) => {
      logger.error({ err, topic: packet.topic }, 'could not queue a message for shared subscriptions')
      return err as Error
    })
  }
}
