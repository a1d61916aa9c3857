/**
 * Whether an MQTT topic filter matches a topic name (MQTT 3.1.1 §4.7).
 * `+` matches one level, `#` the rest (including the parent level,
 * [MQTT-4.7.1-2]); a filter starting with a wildcard does not match a topic
 * starting with `$` [MQTT-4.7.2-1].
 */
export function topicMatches (filter: string, topic: string): boolean {
  if (topic.startsWith('$') && (filter.startsWith('+') || filter.startsWith('#'))) return false
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    const level = f[i]
    if (level === '#') return true
    if (i >= t.length) return false
    if (level !== '+' && level !== t[i]) return false
  }
  return f.length === t.length
}
