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

/**
 * Whether `filter` matches `topic` (the same answer as {@link matchFilter}).
 * Level by level in place, with no split and no array: it runs for each
 * delivery (the QoS check of overlapping subscriptions) and each ACL rule,
 * and V8's split interns the topic string it splits (docs/benchmarks.md,
 * "CPU profiles").
 */
export function topicMatches (filter: string, topic: string): boolean {
  const first = filter.charCodeAt(0)
  if (topic.charCodeAt(0) === 36 /* $ */ && (first === 43 /* + */ || first === 35 /* # */)) return false
  let f = 0
  let t = 0
  for (;;) {
    let fEnd = filter.indexOf('/', f)
    if (fEnd < 0) fEnd = filter.length
    const length = fEnd - f
    // `#` matches the rest, the parent level included [MQTT-4.7.1-2].
    if (length === 1 && filter.charCodeAt(f) === 35) return true
    if (t > topic.length) return false // the topic has no level left
    let tEnd = topic.indexOf('/', t)
    if (tEnd < 0) tEnd = topic.length
    if (!(length === 1 && filter.charCodeAt(f) === 43) && !sameLevel(filter, f, topic, t, length, tEnd - t)) return false
    if (fEnd === filter.length) return tEnd === topic.length
    f = fEnd + 1
    t = tEnd + 1
  }
}

function sameLevel (filter: string, f: number, topic: string, t: number, length: number, topicLength: number): boolean {
  if (length !== topicLength) return false
  for (let k = 0; k < length; k++) {
    if (filter.charCodeAt(f + k) !== topic.charCodeAt(t + k)) return false
  }
  return true
}
