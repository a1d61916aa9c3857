import type { ClientInfo } from '../types/mqtt.js'

export { topicMatches } from '../../protocol/topic-match.js'

/** What a rule grants; `deny` refuses whatever it matches, whatever else allows it. */
export type AclAccess = 'read' | 'write' | 'readwrite' | 'deny'

/** One `topic` or `pattern` line of an ACL file. */
export interface AclRule {
  readonly access: AclAccess
  /** A valid topic filter; in a pattern, `%u` and `%c` stand for the user name and the client id. */
  readonly filter: string
}

/** An ACL file's rules, by section (./acl-file.ts parses them). */
export interface AclDefinition {
  /** `topic` lines before any `user` line: anonymous clients only. */
  readonly anonymous: readonly AclRule[]
  /** `topic` lines under `user <name>`, by user name. */
  readonly users: ReadonlyMap<string, readonly AclRule[]>
  /** `pattern` lines: every client, anonymous included, after substitution. */
  readonly patterns: readonly AclRule[]
}

/** A filter split into levels once, for the checks on every publish and delivery. */
interface CompiledFilter {
  readonly levels: readonly string[]
  /** Starts with `+` or `#`, so matches no topic starting with `$` [MQTT-4.7.2-1]. */
  readonly wildFirst: boolean
}

/** The rules of one client, by what they decide. `readwrite` rules are in both `read` and `write`. */
interface ClientRules {
  readonly deny: readonly CompiledFilter[]
  readonly read: readonly CompiledFilter[]
  readonly write: readonly CompiledFilter[]
}

interface RuleLists {
  deny: CompiledFilter[]
  read: CompiledFilter[]
  write: CompiledFilter[]
}

interface CompiledPattern {
  readonly access: AclAccess
  readonly levels: readonly string[]
  readonly usesUsername: boolean
  readonly usesClientId: boolean
}

interface CachedRules {
  readonly username: string | undefined
  readonly id: string
  readonly rules: ClientRules
}

const NO_RULES: ClientRules = { deny: [], read: [], write: [] }
const PLACEHOLDER = /%[uc]/g
/** A user name or client id with these would widen a pattern (`a/#`), or change its depth. */
const UNSAFE_IN_PATTERN = /[+#/]/

/**
 * A loaded ACL file, in Mosquitto's semantics: a client gets its user
 * section's `topic` rules (the anonymous section without a user name) and
 * every `pattern` rule; a `deny` rule that matches wins, otherwise a rule of
 * the right access must match, and a client with no rule may do nothing.
 */
export class AclRules {
  /** `topic` and `pattern` lines, all sections. */
  readonly ruleCount: number
  /** `user` sections (a user named in two sections counts once). */
  readonly users: number
  readonly #anonymous: ClientRules
  readonly #byUser: ReadonlyMap<string, ClientRules>
  readonly #patterns: readonly CompiledPattern[]
  /**
   * A client's rules with its patterns substituted, made once per ClientInfo:
   * the adapter makes one per connection, so entries go with connections.
   */
  readonly #withPatterns = new WeakMap<ClientInfo, CachedRules>()

  constructor (definition: AclDefinition) {
    this.#anonymous = compileSection(definition.anonymous)
    const byUser = new Map<string, ClientRules>()
    let ruleCount = definition.anonymous.length + definition.patterns.length
    for (const [user, rules] of definition.users) {
      byUser.set(user, compileSection(rules))
      ruleCount += rules.length
    }
    this.#byUser = byUser
    this.#patterns = definition.patterns.map((rule) => ({
      access: rule.access,
      levels: rule.filter.split('/'),
      usesUsername: rule.filter.includes('%u'),
      usesClientId: rule.filter.includes('%c')
    }))
    this.ruleCount = ruleCount
    this.users = byUser.size
  }

  /** Whether `client` may publish to the topic name `topic`. */
  mayPublish (client: ClientInfo, topic: string): boolean {
    const rules = this.#rulesFor(client)
    return allowsTopic(rules.write, rules.deny, topic)
  }

  /** Whether a message on the topic name `topic` may be delivered to `client`. */
  mayReceive (client: ClientInfo, topic: string): boolean {
    const rules = this.#rulesFor(client)
    return allowsTopic(rules.read, rules.deny, topic)
  }

  /**
   * Whether `client` may subscribe to `filter`: a read rule must cover all
   * of it, and it is refused only if a deny rule covers all of it. A filter
   * a deny rule covers in part is granted; {@link mayReceive} then keeps
   * the denied messages from the client.
   */
  maySubscribe (client: ClientInfo, filter: string): boolean {
    const rules = this.#rulesFor(client)
    if (rules.read.length === 0) return false
    const levels = filter.split('/')
    for (const deny of rules.deny) if (coversLevels(deny, levels)) return false
    for (const read of rules.read) if (coversLevels(read, levels)) return true
    return false
  }

  #rulesFor (client: ClientInfo): ClientRules {
    const username = client.username
    if (this.#patterns.length === 0) return this.#section(username)
    const cached = this.#withPatterns.get(client)
    // Checked again in case a caller reuses one object for another identity.
    if (cached !== undefined && cached.username === username && cached.id === client.id) return cached.rules
    const rules = this.#substitute(this.#section(username), username, client.id)
    this.#withPatterns.set(client, { username, id: client.id, rules })
    return rules
  }

  #section (username: string | undefined): ClientRules {
    return username === undefined ? this.#anonymous : this.#byUser.get(username) ?? NO_RULES
  }

  /** `section` plus the pattern rules that apply to this client, substituted. */
  #substitute (section: ClientRules, username: string | undefined, id: string): ClientRules {
    const rules: RuleLists = { deny: [...section.deny], read: [...section.read], write: [...section.write] }
    // An empty value would make `fleet/%c/#` mean `fleet//#`: no identity, no pattern.
    const usernameFits = username !== undefined && username !== '' && !UNSAFE_IN_PATTERN.test(username)
    const idFits = id !== '' && !UNSAFE_IN_PATTERN.test(id)
    for (const pattern of this.#patterns) {
      if ((pattern.usesUsername && !usernameFits) || (pattern.usesClientId && !idFits)) continue
      // One pass, so a user name containing `%c` is not substituted again.
      const levels = pattern.levels.map((level) => level.includes('%')
        ? level.replace(PLACEHOLDER, (placeholder) => placeholder === '%u' ? username as string : id)
        : level)
      addRule(pattern.access, compile(levels), rules)
    }
    return rules
  }
}

/**
 * Whether the rule `rule` covers the filter `filter`: every topic `filter`
 * can match, `rule` matches too (`fleet/#` covers `fleet/+/x`; `fleet/a/#`
 * does not cover `fleet/#`). A rule starting with a wildcard does not cover
 * a filter starting with `$` [MQTT-4.7.2-1].
 */
export function filterCovers (rule: string, filter: string): boolean {
  return coversLevels(compile(rule.split('/')), filter.split('/'))
}

function compileSection (rules: readonly AclRule[]): ClientRules {
  const compiled: RuleLists = { deny: [], read: [], write: [] }
  for (const rule of rules) addRule(rule.access, compile(rule.filter.split('/')), compiled)
  return compiled
}

function addRule (access: AclAccess, filter: CompiledFilter, into: RuleLists): void {
  if (access === 'deny') into.deny.push(filter)
  if (access === 'read' || access === 'readwrite') into.read.push(filter)
  if (access === 'write' || access === 'readwrite') into.write.push(filter)
}

function compile (levels: readonly string[]): CompiledFilter {
  const first = levels[0]
  return { levels, wildFirst: first === '+' || first === '#' }
}

function allowsTopic (allow: readonly CompiledFilter[], deny: readonly CompiledFilter[], topic: string): boolean {
  if (allow.length === 0) return false
  const levels = topic.split('/')
  const dollar = topic.charCodeAt(0) === 36
  for (const rule of deny) if (matchesLevels(rule, levels, dollar)) return false
  for (const rule of allow) if (matchesLevels(rule, levels, dollar)) return true
  return false
}

/** protocol/topic-match.ts's matching, on levels split once. */
function matchesLevels (rule: CompiledFilter, topic: readonly string[], dollar: boolean): boolean {
  if (dollar && rule.wildFirst) return false
  const levels = rule.levels
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]
    // `#` also matches the parent level: `a/#` matches `a`.
    if (level === '#') return true
    if (i >= topic.length) return false
    if (level !== '+' && level !== topic[i]) return false
  }
  return levels.length === topic.length
}

function coversLevels (rule: CompiledFilter, filter: readonly string[]): boolean {
  // A filter starting with a wildcard matches no `$` topic, so only a literal `$` level matters.
  if (rule.wildFirst && filter[0]?.charCodeAt(0) === 36) return false
  const levels = rule.levels
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]
    if (level === '#') return true
    if (i >= filter.length) return false
    const wanted = filter[i]
    // The filter's `#` reaches topics of any depth, the parent included; only a `#` covers that.
    if (wanted === '#') return false
    if (level === '+') continue
    if (level !== wanted) return false
  }
  return levels.length === filter.length
}
