/** Keys remembered; past this the set starts again, so a flood of distinct keys cannot grow it. */
const REMEMBERED = 10_000

/**
 * "Log once" for a broker facing many clients: whether a key (an offender,
 * a client and operation) is seen for the first time. Bounded: after
 * {@link REMEMBERED} keys it forgets them all, so a key may be logged again,
 * never unboundedly remembered.
 */
export class FirstSightings {
  readonly #seen = new Set<string>()

  /** True the first time `key` is offered (since the last reset), false after. */
  first (key: string): boolean {
    if (this.#seen.has(key)) return false
    if (this.#seen.size >= REMEMBERED) this.#seen.clear()
    this.#seen.add(key)
    return true
  }
}
