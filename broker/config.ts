import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ErrorObject, ValidateFunction } from 'ajv'
import { createAjv } from '../protocol/ajv.js'
import { ConfigError } from '../protocol/errors.js'
import type { BrokerConfig } from './generated/config-types.js'

export type { BrokerConfig } from './generated/config-types.js'

/**
 * `fleetq broker` flag values as commander hands them over, by its attribute
 * name (`--max-queued` → `maxQueued`): strings, `true` for a bare boolean
 * flag; checked here.
 */
export interface BrokerFlags {
  config?: string
  [option: string]: string | boolean | undefined
}

/** A setting that a flag and an environment variable can set, besides the config file. */
export interface Setting {
  /** Its path in the config file (schemas/broker-config.schema.json), dotted. */
  key: string
  /** The long flag; commander's attribute for it is {@link flagAttribute}. */
  flag: string
  /** A one-letter alias, if any. */
  short?: string
  /** What the flag's argument is called in `--help`. */
  arg: string
  env: string
  /** One line for `--help`; the schema's description is the full story. */
  help: string
}

/**
 * The common settings, with the flag and variable each goes by; everything
 * else is config-file only. Their type, range and default come from the
 * schema. docs/configuration.md lists the same table.
 */
export const SETTINGS: readonly Setting[] = [
  { key: 'port', flag: '--port', short: '-p', arg: '<port>', env: 'FLEETQ_PORT', help: 'TCP port for MQTT, 0 for any free one' },
  { key: 'host', flag: '--host', arg: '<host>', env: 'FLEETQ_HOST', help: 'address to listen on' },
  { key: 'tls.port', flag: '--tls-port', arg: '<port>', env: 'FLEETQ_TLS_PORT', help: 'port for MQTT over TLS (off unless set)' },
  { key: 'tls.host', flag: '--tls-host', arg: '<host>', env: 'FLEETQ_TLS_HOST', help: 'address of the TLS listener (default: --host)' },
  { key: 'tls.cert', flag: '--tls-cert', arg: '<file>', env: 'FLEETQ_TLS_CERT', help: 'PEM server certificate for TLS and WSS' },
  { key: 'tls.key', flag: '--tls-key', arg: '<file>', env: 'FLEETQ_TLS_KEY', help: 'PEM private key of --tls-cert' },
  { key: 'tls.ca', flag: '--tls-ca', arg: '<file>', env: 'FLEETQ_TLS_CA', help: 'PEM CA that client certificates are checked against' },
  { key: 'tls.certificateIdentity', flag: '--certificate-identity', arg: '[bool]', env: 'FLEETQ_CERTIFICATE_IDENTITY', help: 'a verified client certificate\'s CN is the user name (needs --tls-ca)' },
  { key: 'tls.requireCertificate', flag: '--require-certificate', arg: '[bool]', env: 'FLEETQ_REQUIRE_CERTIFICATE', help: 'refuse TLS and WSS clients without a certificate signed by --tls-ca' },
  { key: 'ws.port', flag: '--ws-port', arg: '<port>', env: 'FLEETQ_WS_PORT', help: 'port for MQTT over WebSocket, path /mqtt (off unless set)' },
  { key: 'wss.port', flag: '--wss-port', arg: '<port>', env: 'FLEETQ_WSS_PORT', help: 'port for MQTT over secure WebSocket, path /mqtt (off unless set)' },
  { key: 'http.port', flag: '--http-port', arg: '<port>', env: 'FLEETQ_HTTP_PORT', help: 'port for the dashboard, admin API, /metrics and health (default 8080)' },
  { key: 'http.host', flag: '--http-host', arg: '<host>', env: 'FLEETQ_HTTP_HOST', help: 'address of the HTTP listener' },
  { key: 'http.enabled', flag: '--http', arg: '[bool]', env: 'FLEETQ_HTTP', help: 'open the HTTP listener (--http false: none)' },
  { key: 'http.token', flag: '--http-token', arg: '<token>', env: 'FLEETQ_HTTP_TOKEN', help: 'bearer token that may read /metrics and the admin API' },
  { key: 'dataDir', flag: '--data-dir', short: '-d', arg: '<dir>', env: 'FLEETQ_DATA_DIR', help: 'LevelDB data directory' },
  { key: 'persistence', flag: '--persistence', arg: '<kind>', env: 'FLEETQ_PERSISTENCE', help: 'level or memory' },
  { key: 'auth.usersFile', flag: '--users-file', arg: '<file>', env: 'FLEETQ_USERS_FILE', help: 'users file of fleetq passwd; anonymous clients are then refused' },
  { key: 'auth.aclFile', flag: '--acl-file', arg: '<file>', env: 'FLEETQ_ACL_FILE', help: 'ACL file in Mosquitto\'s format; reloaded on SIGHUP' },
  { key: 'auth.allowAnonymous', flag: '--allow-anonymous', arg: '[bool]', env: 'FLEETQ_ALLOW_ANONYMOUS', help: 'accept clients without a user name (default: only without --users-file)' },
  { key: 'maxQueuedPerClient', flag: '--max-queued', arg: '<n>', env: 'FLEETQ_MAX_QUEUED', help: 'most messages queued per persistent-session client, 0 = unbounded' },
  { key: 'logLevel', flag: '--log-level', arg: '<level>', env: 'FLEETQ_LOG_LEVEL', help: 'fatal, error, warn, info, debug, trace or silent' },
  { key: 'logFormat', flag: '--log-format', arg: '<format>', env: 'FLEETQ_LOG_FORMAT', help: 'auto, json or pretty' },
  { key: 'tasks.schemasDir', flag: '--schemas-dir', arg: '<dir>', env: 'FLEETQ_SCHEMAS_DIR', help: 'folder of {type}.schema.json task schemas' },
  { key: 'tasks.includeExamples', flag: '--include-examples', arg: '[bool]', env: 'FLEETQ_INCLUDE_EXAMPLES', help: 'also register the shipped example task types' },
  { key: 'tasks.allowUnknownTypes', flag: '--allow-unknown-types', arg: '[bool]', env: 'FLEETQ_ALLOW_UNKNOWN_TYPES', help: 'accept tasks of types without a schema, unchecked' },
  { key: 'tasks.maxPayloadBytes', flag: '--max-payload-bytes', arg: '<n>', env: 'FLEETQ_MAX_PAYLOAD_BYTES', help: 'largest task payload as JSON' },
  { key: 'tasks.idempotencyWindowMs', flag: '--idempotency-window-ms', arg: '<ms>', env: 'FLEETQ_IDEMPOTENCY_WINDOW_MS', help: 'how long an idempotency key is remembered, 0 = off' },
  { key: 'shared.defaults.strategy', flag: '--group-strategy', arg: '<name>', env: 'FLEETQ_GROUP_STRATEGY', help: 'least-inflight, round-robin, random or hash' },
  { key: 'shared.defaults.prefetch', flag: '--group-prefetch', arg: '<n>', env: 'FLEETQ_GROUP_PREFETCH', help: 'unacknowledged messages per group member' },
  { key: 'shared.defaults.ackTimeoutMs', flag: '--group-ack-timeout-ms', arg: '<ms>', env: 'FLEETQ_GROUP_ACK_TIMEOUT_MS', help: 'lease of a message held by a member' },
  { key: 'shared.defaults.maxLength', flag: '--group-max-length', arg: '<n>', env: 'FLEETQ_GROUP_MAX_LENGTH', help: 'most messages waiting in a group' },
  { key: 'delayed.maxDelaySeconds', flag: '--max-delay-seconds', arg: '<s>', env: 'FLEETQ_MAX_DELAY_SECONDS', help: 'longest $delayed/{seconds}/ accepted' },
  { key: 'delayed.maxPending', flag: '--max-delayed', arg: '<n>', env: 'FLEETQ_MAX_DELAYED', help: 'most delayed messages waiting, 0 = unbounded' }
]

export const CONFIG_ENV = 'FLEETQ_CONFIG'

/** Config keys whose relative paths, in a config file, are taken from the file's directory. */
const PATH_KEYS = ['dataDir', 'tasks.schemasDir', 'tls.cert', 'tls.key', 'tls.ca', 'auth.usersFile', 'auth.aclFile']

/** Commander's attribute for a long flag: `--max-queued` → `maxQueued`. */
export function flagAttribute (setting: Setting): string {
  return setting.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}

export interface LoadedConfig {
  /** Only what was set somewhere; createBroker fills in the defaults. */
  values: BrokerConfig
  /** Absolute path of the config file read, if any. */
  configFile: string | undefined
}

/**
 * Reads the config file (from `--config` or FLEETQ_CONFIG), the environment
 * and the flags, checks each against the schema, and merges them setting by
 * setting: flags beat environment beat file beat defaults. Each error names
 * the setting as its source spells it (`tasks.schemasDir`,
 * `FLEETQ_SCHEMAS_DIR`, `--schemas-dir`).
 */
export async function loadBrokerConfig (flags: BrokerFlags, env: Record<string, string | undefined> = process.env): Promise<LoadedConfig> {
  const configPath = nonEmpty(stringFlag(flags.config)) ?? nonEmpty(env[CONFIG_ENV])
  const configFile = configPath === undefined ? undefined : resolve(configPath)
  const fromFile = configFile === undefined ? {} : await readConfigFile(configFile)
  const fromEnv = fromStrings((s) => nonEmpty(env[s.env]), (s) => s.env)
  const fromFlags = fromStrings((s) => flags[flagAttribute(s)], (s) => s.flag)
  return { values: mergeConfig(mergeConfig(fromFile, fromEnv), fromFlags), configFile }
}

/**
 * `override` on top of `base`, setting by setting: objects are merged key by
 * key, anything else (arrays included) replaces; undefined sets nothing.
 */
export function mergeConfig<T extends object> (base: T, override: object): T {
  const result: Record<string, unknown> = { ...(base as Record<string, unknown>) }
  for (const [key, value] of Object.entries(override)) {
    if (value === undefined) continue
    const current = result[key]
    result[key] = isPlainObject(value) && isPlainObject(current) ? mergeConfig(current, value) : value
  }
  return result as T
}

/**
 * Checks a whole configuration (a config file, or createBroker's options
 * without the logger and clock) against schemas/broker-config.schema.json.
 * The first problem becomes a ConfigError naming the setting by `nameOf`
 * (its dotted path by default), with `where` appended.
 */
export function checkConfig (value: unknown, where = '', nameOf: (path: string) => string = (path) => path): BrokerConfig {
  const validate = compiled()
  if (validate(value)) {
    const { $schema: _ignored, ...config } = value as BrokerConfig
    return config
  }
  const error = validate.errors?.[0]
  if (error === undefined) throw new ConfigError('config', `is invalid${where}`)
  throw describeError(error, value, nameOf, where)
}

async function readConfigFile (path: string): Promise<BrokerConfig> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (cause as Error).message
    throw new ConfigError('config', `cannot read ${path}: ${reason}`, { cause })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (cause) {
    throw new ConfigError('config', `${path} is not valid JSON: ${(cause as Error).message}`, { cause })
  }
  const config = checkConfig(parsed, ` (in ${path})`) as Record<string, unknown>
  // A relative path means next to the config file, wherever the broker is started from.
  for (const key of PATH_KEYS) {
    const value = getPath(config, key)
    if (typeof value === 'string' && !isAbsolute(value)) setPath(config, key, resolve(dirname(path), value))
  }
  return config
}

/** Builds a partial config from string values (env or flags), naming errors with `nameOf`. */
function fromStrings (read: (s: Setting) => string | boolean | undefined, nameOf: (s: Setting) => string): BrokerConfig {
  const raw: Record<string, unknown> = {}
  for (const setting of SETTINGS) {
    const value = read(setting)
    if (value === undefined) continue
    setPath(raw, setting.key, parseString(setting, value, nameOf(setting)))
  }
  const byKey = new Map(SETTINGS.map((s) => [s.key, nameOf(s)]))
  return checkConfig(raw, '', (key) => byKey.get(key) ?? key)
}

/** A flag or variable's text as the type its schema asks for; what cannot be read is left for the schema to refuse. */
function parseString (setting: Setting, value: string | boolean, name: string): unknown {
  if (typeof value === 'boolean') return value
  const property = schemaAt(setting.key.split('.'))
  const text = value.trim()
  switch (property?.type) {
    case 'integer':
      if (!/^-?\d+$/.test(text)) throw new ConfigError(name, `${expectation(property)}, got ${JSON.stringify(value)}`)
      return Number(text)
    case 'number':
      if (!/^-?\d+(\.\d+)?$/.test(text)) throw new ConfigError(name, `${expectation(property)}, got ${JSON.stringify(value)}`)
      return Number(text)
    case 'boolean': {
      const bool = BOOLEANS[text.toLowerCase()]
      if (bool === undefined) throw new ConfigError(name, `${expectation(property)}, got ${JSON.stringify(value)}`)
      return bool
    }
    default:
      return value
  }
}

const BOOLEANS: Record<string, boolean | undefined> = { true: true, false: false, 1: true, 0: false, yes: true, no: false }

function describeError (error: ErrorObject, value: unknown, nameOf: (path: string) => string, where: string): ConfigError {
  const path = error.instancePath === '' ? [] : error.instancePath.slice(1).split('/').map(unescapePointer)
  if (error.keyword === 'additionalProperties') {
    const unknownKey = String((error.params as { additionalProperty: string }).additionalProperty)
    const hint = suggest(path, unknownKey)
    const known = Object.keys(schemaAt(path)?.properties ?? {}).filter((k) => k !== '$schema')
    const detail = hint === undefined ? ` (known: ${known.join(', ')})` : ` (did you mean "${hint}"?)`
    return new ConfigError(nameOf([...path, unknownKey].join('.')), `is not a known setting${detail}${where}`)
  }
  if (error.keyword === 'required') {
    const missing = String((error.params as { missingProperty: string }).missingProperty)
    return new ConfigError(nameOf([...path, missing].join('.')), `is required${where}`)
  }
  if (path.length === 0) return new ConfigError('config', `must be a JSON object${where}`)
  const property = schemaAt(path)
  const detail = property === undefined ? String(error.message) : expectation(property)
  return new ConfigError(nameOf(path.join('.')), `${detail}, got ${JSON.stringify(getPath(value, path))}${where}`)
}

export interface PropertySchema {
  type?: string
  description?: string
  enum?: unknown[]
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  minLength?: number
  pattern?: string
  $ref?: string
  properties?: Record<string, PropertySchema>
  additionalProperties?: boolean | PropertySchema
  items?: PropertySchema
}

/** Patterns of the schema, in words. */
const PATTERNS: Record<string, string> = {
  '^[^+#]*/$': 'must end with "/" and have no wildcards'
}

/** "must be ..." from the schema itself, so the message cannot drift from the rule. */
function expectation (property: PropertySchema): string {
  if (property.enum !== undefined) return `must be one of ${property.enum.map((v) => JSON.stringify(v)).join(', ')}`
  switch (property.type) {
    case 'integer':
      if (property.minimum !== undefined && property.maximum !== undefined) {
        return `must be an integer from ${property.minimum} to ${property.maximum}`
      }
      return property.minimum !== undefined ? `must be an integer >= ${property.minimum}` : 'must be an integer'
    case 'number':
      if (property.exclusiveMinimum !== undefined) return `must be a number > ${property.exclusiveMinimum}`
      return property.minimum !== undefined ? `must be a number >= ${property.minimum}` : 'must be a number'
    case 'string':
      if (property.pattern !== undefined) return PATTERNS[property.pattern] ?? `must match ${property.pattern}`
      return property.minLength !== undefined && property.minLength > 0 ? 'must be a non-empty string' : 'must be a string'
    case 'boolean':
      return 'must be true or false'
    case 'object':
      return 'must be an object'
    case 'array':
      return 'must be an array'
    default:
      return `must be of type ${String(property.type)}`
  }
}

/** The schema of the value at `path` (property names and array indexes), $refs followed. */
function schemaAt (path: readonly string[]): PropertySchema | undefined {
  let node: PropertySchema | undefined = deref(schema())
  for (const segment of path) {
    if (node === undefined) return undefined
    if (node.type === 'array') {
      node = deref(node.items)
    } else {
      const additional: PropertySchema | undefined = typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined
      node = deref(node.properties?.[segment] ?? additional)
    }
  }
  return node
}

function deref (node: PropertySchema | undefined): PropertySchema | undefined {
  const name = node?.$ref === undefined ? undefined : /^#\/definitions\/(.+)$/.exec(node.$ref)?.[1]
  return name === undefined ? node : deref(schema().definitions[name])
}

/**
 * The closest known setting for a typo, as its full path: a sibling key, or
 * any setting by its key, flag or variable name (`schemas-dir` at the top
 * level → `tasks.schemasDir`); same letters ignoring case and -/_, or within
 * two edits.
 */
function suggest (parent: readonly string[], unknownKey: string): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '')
  const target = norm(unknownKey)
  const candidates: Array<{ alias: string, key: string }> = []
  for (const sibling of Object.keys(schemaAt(parent)?.properties ?? {})) {
    candidates.push({ alias: sibling, key: [...parent, sibling].join('.') })
  }
  for (const setting of SETTINGS) {
    const last = setting.key.split('.').at(-1) ?? setting.key
    for (const alias of [setting.key, last, flagAttribute(setting), setting.flag.slice(2), setting.env.slice('FLEETQ_'.length)]) {
      candidates.push({ alias, key: setting.key })
    }
  }
  let best: { key: string, distance: number } | undefined
  for (const { alias, key } of candidates) {
    const distance = editDistance(target, norm(alias))
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { key, distance }
  }
  return best?.key
}

function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution)
    }
    previous = current
  }
  return previous[b.length] ?? 0
}

function getPath (value: unknown, path: string | readonly string[]): unknown {
  let node = value
  for (const segment of typeof path === 'string' ? path.split('.') : path) {
    if (node === null || typeof node !== 'object') return undefined
    node = (node as Record<string, unknown>)[segment]
  }
  return node
}

function setPath (target: Record<string, unknown>, dotted: string, value: unknown): void {
  const segments = dotted.split('.')
  const last = segments.pop() as string
  let node = target
  for (const segment of segments) {
    const next = node[segment]
    if (!isPlainObject(next)) node[segment] = {}
    node = node[segment] as Record<string, unknown>
  }
  node[last] = value
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
}

/** RFC 6901. */
function unescapePointer (segment: string): string {
  return segment.replaceAll('~1', '/').replaceAll('~0', '~')
}

function stringFlag (value: string | boolean | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function nonEmpty (value: string | undefined): string | undefined {
  // An empty variable (FLEETQ_PORT=) means unset, as in most shells' `${VAR:-default}`.
  return value === undefined || value === '' ? undefined : value
}

interface ConfigSchema extends PropertySchema {
  $id: string
  properties: Record<string, PropertySchema>
  definitions: Record<string, PropertySchema>
}

let cachedSchema: ConfigSchema | undefined
let cachedValidate: ValidateFunction | undefined

/**
 * The schema lives in the package root's schemas/: one level up from
 * broker/config.ts (run by tsx), two levels up from dist/broker/config.js.
 */
function schema (): ConfigSchema {
  if (cachedSchema !== undefined) return cachedSchema
  const candidates = ['../schemas/broker-config.schema.json', '../../schemas/broker-config.schema.json']
    .map((relative) => fileURLToPath(new URL(relative, import.meta.url)))
  const path = candidates.find((candidate) => existsSync(candidate))
  if (path === undefined) throw new Error(`broker-config.schema.json not found; looked in ${candidates.join(', ')}`)
  cachedSchema = JSON.parse(readFileSync(path, 'utf8')) as ConfigSchema
  return cachedSchema
}

/** A setting's schema by its dotted key ($refs followed), for the docs test. */
export function settingSchema (key: string): PropertySchema | undefined {
  return schemaAt(key.split('.'))
}

/** The value at a dotted key of a config object (`defaultOf` for the defaults). */
export function valueAt (config: unknown, key: string): unknown {
  return getPath(config, key)
}

function compiled (): ValidateFunction {
  // Compiled once, on first use; the first error is the one reported.
  cachedValidate ??= createAjv({ allErrors: false }).compile(schema())
  return cachedValidate
}
