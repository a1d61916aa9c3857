/**
 * The first topic levels of the shared groups' filters, counted: a cheap
 * "can any group match this topic?" before the trie. The trie's match splits
 * the topic, and V8's split interns the fresh string it is given, which on a
 * topic no group takes (a task's result, `$fleetq/results/{producer}/{id}`)
 * was the larger part of routing it (docs/benchmarks.md, "CPU profiles").
 *
 * Two literal levels are kept where a filter has them: the built-in
 * dead-letter group's `$fleetq/dead/+` shares its first level with every
 * task result, which would otherwise reach the trie, each with a topic never
 * seen before, and fill the trie's answer cache (shared-subscriptions.ts)
 * with topics seen once.
 */
export class FirstLevels {
  /** Filters by their literal first level, when their second is a wildcard or absent. */
  readonly #one = new Map<string, number>()
  /** Filters by their first two levels, both literal (`tasks/thumbnail` of `tasks/thumbnail/#`). */
  readonly #two = new Map<string, number>()
  /** Filters whose first level is `+` or `#`: they match any topic that does not start with `$`. */
  #wildcard = 0

  add (filter: string): void {
    const prefix = literalPrefix(filter)
    if (prefix === null) this.#wildcard++
    else count(prefix.levels === 1 ? this.#one : this.#two, prefix.key, 1)
  }

  remove (filter: string): void {
    const prefix = literalPrefix(filter)
    if (prefix === null) this.#wildcard--
    else count(prefix.levels === 1 ? this.#one : this.#two, prefix.key, -1)
  }

  /**
   * False only when no filter can match `topic`; true is a maybe, for the
   * trie to settle. A leading wildcard does not match a `$` topic
   * [MQTT-4.7.2-1], so for those only a literal first level counts.
   */
  mayMatch (topic: string): boolean {
    if (this.#wildcard > 0 && topic.charCodeAt(0) !== 36 /* $ */) return true
    if (this.#one.size > 0 && this.#one.has(firstLevels(topic, 1))) return true
    return this.#two.size > 0 && this.#two.has(firstLevels(topic, 2))
  }
}

function count (counts: Map<string, number>, key: string, by: 1 | -1): void {
  const n = (counts.get(key) ?? 0) + by
  if (n > 0) counts.set(key, n)
  else counts.delete(key)
}

/** The filter's literal first level, or first two when both are literal; null when the first is a wildcard. */
function literalPrefix (filter: string): { key: string, levels: 1 | 2 } | null {
  const first = firstLevels(filter, 1)
  if (first === '+' || first === '#') return null
  if (first.length === filter.length) return { key: first, levels: 1 }
  const two = firstLevels(filter, 2)
  const second = two.slice(first.length + 1)
  // `a/#` also matches `a` itself [MQTT-4.7.1-2]: one level it is.
  if (second === '+' || second === '#') return { key: first, levels: 1 }
  return { key: two, levels: 2 }
}

/** `name` up to (not including) the slash after its first `levels` levels; all of it if it has no more. */
function firstLevels (name: string, levels: 1 | 2): string {
  const slash = name.indexOf('/')
  if (slash < 0) return name
  if (levels === 1) return name.slice(0, slash)
  const next = name.indexOf('/', slash + 1)
  return next < 0 ? name : name.slice(0, next)
}
