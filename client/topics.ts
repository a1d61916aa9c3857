/**
 * The topic layout of the task queue (DESIGN.md, docs/client.md). Topics that
 * start with `$` are not matched by `#` or `+` at the first level
 * [MQTT-4.7.2-1], which keeps results and dead letters out of ordinary
 * wildcard subscriptions.
 */

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
export const PREFETCH_TOPIC = '$fleetq/share/prefetch'

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
  const f = stripShare(filter).split('/')
  const t = topic.split('/')
  // [MQTT-4.7.2-1] wildcards at the first level do not match $ topics
  if ((f[0] === '+' || f[0] === '#') && topic.startsWith('$')) return null
  const params: string[] = []
  for (let i = 0; i < f.length; i++) {
    const level = f[i]!
    if (level === '#') {
      params.push(t.slice(i).join('/'))
      return params
    }
    if (i >= t.length) return null
    if (level === '+') params.push(t[i]!)
    else if (level !== t[i]) return null
  }
  return f.length === t.length ? params : null
}

function stripShare (filter: string): string {
  if (!filter.startsWith('$share/')) return filter
  const rest = filter.slice('$share/'.length)
  const slash = rest.indexOf('/')
  return slash === -1 ? rest : rest.slice(slash + 1)
}
