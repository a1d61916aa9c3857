import type { Logger } from 'pino'
import { ConfigError } from '../../protocol/errors.js'
import { isShareTopic, parseShareTopic, PREFETCH_TOPIC, REPLIES_PREFIX, RESULTS_PREFIX, SCHEDULE_REQUEST_TOPIC, SYS_PREFIX } from '../../protocol/topics.js'
import type { ClientInfo } from '../types/mqtt.js'
import type { AclRules } from './acl.js'
import { AclFileError, loadAcl } from './acl-file.js'
import { FirstSightings } from './first-sightings.js'

/** Topics only the admin role may use once the broker is secured, whatever the ACL file says. */
export const ADMIN_PREFIX = '$fleetq/admin/'

export interface TopicAccessSettings {
  /** The ACL file (`auth.aclFile`); unset, every client may use every topic but those kept below. */
  aclFile?: string
  /** User names in the admin role (`auth.admins`). */
  admins: readonly string[]
  /**
   * Whether the broker checks who connects (a users file) or what they may
   * touch (an ACL file): then `$SYS/`, schedule management and the admin
   * topics are the admin role's alone. An open broker keeps them open.
   */
  secured: boolean
}

/** Refusals since start, by operation. */
export interface AccessStats {
  publishDenied: number
  subscribeDenied: number
  /** Deliveries withheld from a subscriber (live, retained or queued). A group message waits for a member that may read it instead. */
  receiveDenied: number
}

type Decision = boolean | 'acl'

/**
 * Who may use which topic (docs/security.md): the rules fleetq keeps
 * whatever the ACL file says, then the ACL file.
 * - A client's results and replies (`$fleetq/results/{clientId}/...`,
 *   `$fleetq/replies/{clientId}/...`) are read by that client alone, which
 *   needs no rule for it; nobody subscribes across clients with a wildcard.
 * - A worker may always set its own prefetch (`$fleetq/share/prefetch`).
 * - Once secured, `$SYS/`, `$fleetq/schedules/request` and `$fleetq/admin/`
 *   are the admin role's alone, which needs no rule for them.
 * - Everything else is the ACL file's, in Mosquitto's format; without one, open.
 */
export class TopicAccess {
  readonly #settings: TopicAccessSettings
  readonly #logger: Logger
  readonly #admins: ReadonlySet<string>
  #acl: AclRules | null
  readonly #stats: Omit<AccessStats, 'receiveDenied'> = { publishDenied: 0, subscribeDenied: 0 }
  readonly #logged = new FirstSightings()

  private constructor (settings: TopicAccessSettings, logger: Logger, acl: AclRules | null) {
    this.#settings = settings
    this.#logger = logger
    this.#admins = new Set(settings.admins)
    this.#acl = acl
  }

  /** Reads the ACL file; a ConfigError (exit 2 from the CLI) names the bad line. */
  static async create (settings: TopicAccessSettings, logger: Logger): Promise<TopicAccess> {
    const acl = settings.aclFile === undefined ? null : await readAcl(settings.aclFile)
    return new TopicAccess(settings, logger, acl)
  }

  /** Logs, once the broker listens, what the ACL file holds. */
  announce (): void {
    const acl = this.#acl
    if (acl !== null) this.#logger.info({ aclFile: this.#settings.aclFile, rules: acl.ruleCount, users: acl.users }, 'ACL file loaded')
  }

  /**
   * Reads the ACL file again. Subscriptions already granted stay, but every
   * delivery is checked against the new rules. A file that cannot be used is
   * logged, leaves the rules as they were, and rejects with a ConfigError.
   */
  async reload (): Promise<void> {
    const aclFile = this.#settings.aclFile
    if (aclFile === undefined) return
    try {
      this.#acl = await readAcl(aclFile)
      this.announce()
    } catch (err) {
      this.#logger.error({ err, aclFile }, 'ACL file not reloaded; the previous rules stay')
      throw err
    }
  }

  stats (): Omit<AccessStats, 'receiveDenied'> {
    return { ...this.#stats }
  }

  /** A PUBLISH to `topic` (for `$delayed/{s}/{topic}`, the target). */
  authorizePublish (client: ClientInfo, topic: string): boolean {
    const reserved: Decision = topic.charCodeAt(0) === 36 ? this.#reserved(client, topic, 'write') : 'acl'
    const allowed = reserved === 'acl' ? this.#acl === null || this.#acl.mayPublish(client, topic) : reserved
    if (!allowed) this.#denied('publishDenied', client, topic)
    return allowed
  }

  /** One filter of a SUBSCRIBE; a `$share/{group}/{filter}` is judged by its filter. */
  authorizeSubscribe (client: ClientInfo, filter: string): boolean {
    const share = isShareTopic(filter) ? parseShareTopic(filter) : null
    const target = typeof share === 'object' && share !== null ? share.filter : filter
    const reserved: Decision = target.charCodeAt(0) === 36 ? this.#reservedFilter(client, target) : 'acl'
    const allowed = reserved === 'acl' ? this.#acl === null || this.#acl.maySubscribe(client, target) : reserved
    if (!allowed) this.#denied('subscribeDenied', client, filter)
    return allowed
  }

  /**
   * A message on `topic` about to be written to `client`. Runs on every
   * delivery, and as a group looks for a member: a withheld delivery is
   * counted where it is withheld (the adapter), not here.
   */
  authorizeReceive (client: ClientInfo, topic: string): boolean {
    const acl = this.#acl
    if (topic.charCodeAt(0) !== 36) return acl === null || acl.mayReceive(client, topic)
    const decision = this.#reserved(client, topic, 'read')
    return decision === true || (decision === 'acl' && (acl === null || acl.mayReceive(client, topic)))
  }

  /** The rules fleetq keeps for a `$` topic name: allowed, refused, or the ACL's to decide. */
  #reserved (client: ClientInfo, topic: string, access: 'read' | 'write'): Decision {
    if (access === 'read') {
      const owner = ownerOf(topic)
      if (owner !== null) return owner === client.id
    } else if (topic === PREFETCH_TOPIC) {
      // A worker's own window in its groups: it concerns nobody else.
      return true
    }
    if (isAdminTopic(topic)) return !this.#settings.secured || this.#isAdmin(client)
    return 'acl'
  }

  /** The same for a filter, which may carry wildcards. */
  #reservedFilter (client: ClientInfo, filter: string): Decision {
    for (const prefix of [RESULTS_PREFIX, REPLIES_PREFIX]) {
      // Only a client's own: `$fleetq/results/{itself}/...`, with its id as a
      // literal level, not a wildcard standing for everyone's.
      if (filter.startsWith(prefix)) return filter.startsWith(`${prefix}${client.id}/`) && !/[+#]/.test(client.id)
    }
    const levels = filter.split('/')
    // `$fleetq/+/...` and `$fleetq/#` would reach other clients' results.
    if (levels[0] === '$fleetq' && (levels[1] === '+' || levels[1] === '#')) return false
    if (isAdminFilter(filter)) return !this.#settings.secured || this.#isAdmin(client)
    return 'acl'
  }

  #isAdmin (client: ClientInfo): boolean {
    return client.username !== undefined && this.#admins.has(client.username)
  }

  #denied (counter: 'publishDenied' | 'subscribeDenied', client: ClientInfo, topic: string): void {
    this.#stats[counter]++
    // Logged once per client and operation: a device retrying a refused
    // publish in a loop is one line, and still counted every time.
    if (!this.#logged.first(`${counter}\u0000${client.id}`)) return
    this.#logger.info({ clientId: client.id, username: client.username, topic, operation: counter.replace('Denied', '') }, 'not authorized (logged once per client and operation; counted in stats().access)')
  }
}

/** The client whose results or replies `topic` carries, or null for any other topic. */
function ownerOf (topic: string): string | null {
  for (const prefix of [RESULTS_PREFIX, REPLIES_PREFIX]) {
    if (topic.startsWith(prefix)) {
      const end = topic.indexOf('/', prefix.length)
      return end < 0 ? topic.slice(prefix.length) : topic.slice(prefix.length, end)
    }
  }
  return null
}

function isAdminTopic (topic: string): boolean {
  return topic.startsWith(SYS_PREFIX) || topic === SCHEDULE_REQUEST_TOPIC || topic.startsWith(ADMIN_PREFIX)
}

/** A filter that can match an admin topic: under `$SYS/`, `$fleetq/admin/` or `$fleetq/schedules/`, wildcards included. */
function isAdminFilter (filter: string): boolean {
  const [first, second] = filter.split('/', 2)
  if (first === '$SYS') return true
  return first === '$fleetq' && (second === 'admin' || second === 'schedules')
}

async function readAcl (aclFile: string): Promise<AclRules> {
  try {
    return await loadAcl(aclFile)
  } catch (err) {
    if (err instanceof AclFileError) throw new ConfigError('auth.aclFile', `${aclFile}: ${(err as Error).message}`, { cause: err })
    if ((err as { code?: unknown }).code === 'ENOENT') throw new ConfigError('auth.aclFile', `${aclFile} does not exist`, { cause: err })
    throw err
  }
}
