import { ErrorCodes, FleetqClientError } from '../protocol/errors.js'
import { delayedTopic } from '../protocol/topics.js'

/**
 * The topic that makes the broker publish to `topic` after `delayMs`
 * (`$delayed/{seconds}/{topic}`, docs/scheduling.md), or `topic` itself when
 * there is no delay. Throws FLEETQ_DELAY_INVALID for a delay that is not a
 * finite number of milliseconds >= 0.
 */
export function topicWithDelay (topic: string, delayMs: number | undefined): string {
  if (delayMs === undefined || delayMs === 0) return topic
  if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
    throw new FleetqClientError(ErrorCodes.DELAY_INVALID, `delay must be a number of milliseconds >= 0, got ${String(delayMs)}`)
  }
  return delayedTopic(delayMs, topic)
}
