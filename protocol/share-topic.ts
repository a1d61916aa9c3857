/** A `$share/{group}/{filter}` subscription, split up. */
export interface ShareTopic {
  group: string
  filter: string
  /** Identifies the group: name and filter together (MQTT 5 §4.8.2). */
  key: string
}

export const SHARE_PREFIX = '$share/'

export function isShareTopic (topic: string): boolean {
  return topic.startsWith(SHARE_PREFIX)
}

/** `$share/{group}/{filter}`. */
export function shareFilter (group: string, filter: string): string {
  return `${SHARE_PREFIX}${group}/${filter}`
}

/**
 * Parses `$share/{group}/{filter}`. The group name must be non-empty and free
 * of `/`, `+` and `#`, and the filter a valid topic filter (MQTT 5 §4.8.2,
 * which EMQX, HiveMQ and Mosquitto 2 also apply to MQTT 3.1.1 clients).
 * Returns a reason string when it is not valid.
 */
export function parseShareTopic (topic: string): ShareTopic | string {
  if (!isShareTopic(topic)) return 'not a $share/ topic'
  const rest = topic.slice(SHARE_PREFIX.length)
  const slash = rest.indexOf('/')
  if (slash <= 0) return 'expected $share/{group}/{filter}'
  const group = rest.slice(0, slash)
  const filter = rest.slice(slash + 1)
  if (/[+#]/.test(group)) return 'the group name may not contain + or #'
  if (filter.length === 0) return 'the filter is empty'
  const levels = filter.split('/')
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i] as string
    // [MQTT-4.7.1-2] # alone and last; [MQTT-4.7.1-3] + alone in its level
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return 'misplaced # in the filter'
    if (level.includes('+') && level !== '+') return 'misplaced + in the filter'
  }
  return { group, filter, key: `${group}/${filter}` }
}
