import type { Logger } from 'pino'
import { FirstSightings } from './first-sightings.js'

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

/**
 * Counts each limit hit, and logs the first hit of each limit by each
 * offender (a client id or an address): a device stuck in a loop of
 * refusals is one log line, not thousands, and still counted every time.
 */
export class LimitCounters {
  readonly #logger: Logger
  readonly #counts: LimitStats
  readonly #logged = new FirstSightings()

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
    if (!this.#logged.first(`${limit}\u0000${offender}`)) return
    this.#logger.warn({ limit, offender, ...details }, 'limit reached (logged once per offender; counted in stats().limits)')
  }

  stats (): LimitStats {
    return { ...this.#counts }
  }
}
