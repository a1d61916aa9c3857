import type { Logger } from 'pino'

/**
 * Every limit of `limits.*` (and the task gate's JSON limits) by the name it
 * is counted under in `stats().limits` (docs/security.md lists each with its
 * default).
 */
export const LIMIT_NAMES = [
  'maxPacketBytes',
  'maxConnections',
  'maxConnectionsPerAddress',
  'connectsPerSecondPerAddress',
  'connectTimeoutMs',
  'maxInflightInbound',
  'maxTopicBytes',
  'maxTopicLevels',
  'maxClientIdBytes',
  'keepaliveBounds',
  'maxSubscriptionsPerClient',
  'publishesPerSecondPerClient',
  'maxQueuedPerClient',
  'maxJsonDepth',
  'maxPayloadBytes'
] as const

export type LimitName = typeof LIMIT_NAMES[number]

/** How many times each limit was hit since start. */
export type LimitStats = Record<LimitName, number>

/** Offenders remembered per limit for "log once"; past this the set starts again, so a flood from many addresses cannot grow it. */
const REMEMBERED_OFFENDERS = 10_000

/**
 * Counts each limit hit, and logs the first hit of each limit by each
 * offender (a client id or an address): a device stuck in a loop of
 * refusals is one log line, not thousands, and still counted every time.
 */
export class LimitCounters {
  readonly #logger: Logger
  readonly #counts: LimitStats
  readonly #logged = new Map<LimitName, Set<string>>()

  constructor (logger: Logger) {
    this.#logger = logger
    this.#counts = Object.fromEntries(LIMIT_NAMES.map((name) => [name, 0])) as LimitStats
  }

  /**
   * One hit of `limit` by `offender`, with what the log line should say
   * (the value seen and the bound, say).
   */
  hit (limit: LimitName, offender: string, details: Record<string, unknown> = {}): void {
    this.#counts[limit]++
    let seen = this.#logged.get(limit)
    if (seen === undefined) {
      seen = new Set()
      this.#logged.set(limit, seen)
    }
    if (seen.has(offender)) return
    if (seen.size >= REMEMBERED_OFFENDERS) seen.clear()
    seen.add(offender)
    this.#logger.warn({ limit, offender, ...details }, 'limit reached (logged once per offender; counted in stats().limits)')
  }

  stats (): LimitStats {
    return { ...this.#counts }
  }
}
