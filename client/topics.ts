/**
 * The topic layout of the task queue (DESIGN.md, docs/client.md). Topics that
 * start with `$` are not matched by `#` or `+` at the first level
 * [MQTT-4.7.2-1], which keeps results and dead letters out of ordinary
 * wildcard subscriptions.
 */
import { matchFilter } from '../broker/delivery/topic-match.js'

/** Where producers submit tasks of `type`. */
export function taskTopic (type: string): string {
  return `tasks/${type}`
}

/** The shared subscription a worker group takes tasks of `type` from. */
export function taskShareFilter (group: string, type: string): string {
  return `$share/${group}/${taskTopic(type)}`
}

export const RESULTS_PREFIX = '$fleetq/results/'

/** Per producer, so an ACL can protect it with the client id (`%c`). */
export function resultTopic (producerClientId: string, taskId: string): string {
  return `${RESULTS_PREFIX}${producerClientId}/${taskId}`
}

export function resultFilter (producerClientId: string): string {
  return `${RESULTS_PREFIX}${producerClientId}/+`
}

export function deadLetterTopic (type: string): string {
  return `$fleetq/dead/${type}`
}

/** The broker's prefetch control topic (docs/shared-subscriptions.md). */
export { PREFETCH_TOPIC } from '../broker/shared/share-topic.js'

/** A task type or group name must be one topic level without wildcards. */
export function isTopicLevel (name: string): boolean {
  return name.length > 0 && !/[/+#\0]/.test(name)
}

/**
 * Matches `topic` against an MQTT `filter` (a `$share/{group}/` prefix is
 * ignored). Returns the values matched by `+` and `#`, in order (`#` gives
 * the rest of the topic, '' when it matches the parent level), or null.
 */
export function matchTopic (filter: string, topic: string): string[] | null {
  return matchFilter(stripShare(filter), topic)
}

function stripShare (filter: string): string {
  if (!filter.startsWith('$share/')) return filter
  const rest = filter.slice('$share/'.length)
  const slash = rest.indexOf('/')
  return slash === -1 ? rest : rest.slice(slash + 1)
}
