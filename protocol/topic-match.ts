/**
 * Matches an MQTT topic filter against a topic name (MQTT 3.1.1 §4.7) and
 * returns the values matched by `+` and `#`, in order (`#` gives the rest of
 * the topic, '' when it matches the parent level [MQTT-4.7.1-2]), or null.
 * A filter starting with a wildcard does not match a topic starting with `$`
 * [MQTT-4.7.2-1]. The filter is taken literally: a `$share/` filter matches
 * only `$share/` topics (see `matchTopic` in topics.ts for subscription filters).
 */
export function matchFilter (filter: string, topic: string): string[] | null {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return null
  const f = filter.split('/')
  const t = topic.split('/')
  const params: string[] = []
  for (let i = 0; i < f.length; i++) {
    const level = f[i] as string
    if (level === '#') {
      params.push(t.slice(i).join('/'))
      return params
    }
    if (i >= t.length) return null
    if (level === '+') params.push(t[i] as string)
    else if (level !== t[i]) return null
  }
  return f.length === t.length ? params : null
}

/** Whether `filter` matches `topic` (see {@link matchFilter}). */
export function topicMatches (filter: string, topic: string): boolean {
  return matchFilter(filter, topic) !== null
}
