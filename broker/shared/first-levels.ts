/**
 * The first topic levels of the shared groups' filters, counted: a cheap
 * "can any group match this topic?" before the trie. The trie's match splits
 * the topic, and V8's split interns the fresh string it is given, which on a
 * topic no group takes (a task's result, `$fleetq/results/{producer}/{id}`)
 * was the larger part of routing it (docs/benchmarks.md, "CPU profiles").
 */
export class FirstLevels {
  /** Filters by their literal first level. */
  readonly #literal = new Map<string, number>()
  /** Filters whose first level is `+` or `#`: they match any topic that does not start with `$`. */
  #wildcard = 0

  add (filter: string): void {
    const first = firstLevel(filter)
    if (first === '+' || first === '#') this.#wildcard++
    else this.#literal.set(first, (this.#literal.get(first) ?? 0) + 1)
  }

  remove (filter: string): void {
    const first = firstLevel(filter)
    if (first === '+' || first === '#') {
      this.#wildcard--
      return
    }
    const count = this.#literal.get(first)
    if (count === undefined) return
    if (count <= 1) this.#literal.delete(first)
    else this.#literal.set(first, count - 1)
  }

  /**
   * False only when no filter can match `topic`; true is a maybe, for the
   * trie to settle. A leading wildcard does not match a `$` topic
   * [MQTT-4.7.2-1], so for those only a literal first level counts.
   */
  mayMatch (topic: string): boolean {
    if (this.#wildcard > 0 && topic.charCodeAt(0) !== 36 /* $ */) return true
    if (this.#literal.size === 0) return false
    return this.#literal.has(firstLevel(topic))
  }
}

function firstLevel (name: string): string {
  const slash = name.indexOf('/')
  return slash < 0 ? name : name.slice(0, slash)
}
