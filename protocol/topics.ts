/**
 * The topic layout fleetq speaks (README "Topics", docs/architecture.md): every
 * topic name and prefix is defined here once, with its builder and parser.
 * Topics that start with `$` are not matched by `#` or `+` at the first level
 * [MQTT-4.7.2-1], which keeps results, dead letters and control topics out of
 * ordinary wildcard subscriptions.
 */
import { parseShareTopic, shareFilter } from './share-topic.js'
import { matchFilter } from './topic-match.js'

export { DELAYED_PREFIX, delayedTopic, isDelayedTopic, parseDelayedTopic } from './delayed-topic.js'
export { isShareTopic, parseShareTopic, shareFilter, SHARE_PREFIX, type ShareTopic } from './share-topic.js'
export { matchFilter, topicMatches } from './topic-match.js'

/** Where producers and devices submit tasks: `tasks/{type}`. */
export const TASKS_PREFIX = 'tasks/'

export function taskTopic (type: string, prefix: string = TASKS_PREFIX): string {
  return `${prefix}${type}`
}

/**
 * The `{type}` of a submission topic `{prefix}{type}` (exactly one level), or
 * null for any other topic. A type that cannot be a task type is still
 * returned, so the gate dead-letters it rather than letting it through.
 */
export function parseTaskTopic (topic: string, prefix: string = TASKS_PREFIX): string | null {
  if (!topic.startsWith(prefix)) return null
  const type = topic.slice(prefix.length)
  return type === '' || type.includes('/') ? null : type
}

/** The shared subscription a worker group takes tasks of `type` from; each type's default group is named after it. */
export function taskShareFilter (group: string, type: string): string {
  return shareFilter(group, taskTopic(type))
}

export const RESULTS_PREFIX = '$fleetq/results/'

/** Per producer, so an ACL can protect it with the client id (`%c`). */
export function resultTopic (producerClientId: string, taskId: string): string {
  return `${RESULTS_PREFIX}${producerClientId}/${taskId}`
}

export function resultFilter (producerClientId: string): string {
  return `${RESULTS_PREFIX}${producerClientId}/+`
}

/** Dead letters: `$fleetq/dead/{type}` with the reason (docs/tasks.md). */
export const DEAD_LETTER_PREFIX = '$fleetq/dead/'

export function deadLetterTopic (type: string, prefix: string = DEAD_LETTER_PREFIX): string {
  return `${prefix}${type}`
}

/** Where the gate sends a repeated submission (same idempotency key): nothing subscribes, so it is acknowledged and dropped. */
export const DUPLICATES_PREFIX = '$fleetq/duplicates/'

/** Dead letters are kept in this durable group until someone takes them. */
export const DEAD_LETTER_GROUP = shareFilter('dead-letters', `${DEAD_LETTER_PREFIX}+`)

/** Where refused `$delayed/...` publishes are kept, in the dead-letter group. */
export const DELAYED_DEAD_LETTER_TOPIC = deadLetterTopic('$delayed')

/** A member publishes `{"prefetch": n, "group"?: "name"}` here to set its own window (docs/shared-subscriptions.md). */
export const PREFETCH_TOPIC = '$fleetq/share/prefetch'

/** Schedule management requests (`client.schedules`, docs/scheduling.md). */
export const SCHEDULE_REQUEST_TOPIC = '$fleetq/schedules/request'

/** Replies to requests, per client so an ACL can protect them with `%c`. */
export const REPLIES_PREFIX = '$fleetq/replies/'

export function replyTopic (clientId: string, requestId: string): string {
  return `${REPLIES_PREFIX}${clientId}/${requestId}`
}

export function replyFilter (clientId: string): string {
  return `${REPLIES_PREFIX}${clientId}/+`
}

/** The broker's own statistics; clients may not publish here. */
export const SYS_PREFIX = '$SYS/'

/** A task type, group name or client id used inside a topic must be one topic level without wildcards. */
export function isTopicLevel (name: string): boolean {
  return name.length > 0 && !/[/+#\0]/.test(name)
}

/**
 * Matches `topic` against a subscription `filter` (a `$share/{group}/` prefix is
 * ignored). Returns the values matched by `+` and `#`, in order (`#` gives
 * the rest of the topic, '' when it matches the parent level), or null.
 */
export function matchTopic (filter: string, topic: string): string[] | null {
  const share = parseShareTopic(filter)
  return matchFilter(typeof share === 'string' ? filter : share.filter, topic)
}
