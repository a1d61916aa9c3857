import { existsSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import { ConfigError } from './errors.js'
import type { DelayedOptions, LogLevel, PersistenceKind } from './options.js'
import type { ScheduleInput } from './scheduler/schedule.js'

/** What a config file, the environment and flags can set; mirrors schemas/broker-config.schema.json. */
export interface BrokerConfig {
  port?: number
  host?: string
  dataDir?: string
  persistence?: PersistenceKind
  maxQueuedPerClient?: number
  logLevel?: LogLevel
  /** Config file only. */
  delayed?: DelayedOptions
  /** Config file only. */
  schedules?: ScheduleInput[]
}

type SettingKey = Exclude<keyof BrokerConfig, 'delayed' | 'schedules'>
/** Settings only a config file can hold (they are structured). */
const FILE_ONLY_KEYS = ['delayed', 'schedules'] as const

/** `fleetq broker` flag values as commander hands them over: strings, checked here. */
export interface BrokerFlags {
  port?: string
  host?: string
  dataDir?: string
  persistence?: string
  maxQueued?: string
  logLevel?: string
  config?: string
}

export interface Setting {
  key: SettingKey
  /** Property of {@link BrokerFlags} commander fills. */
  option: keyof BrokerFlags
  flag: string
  env: string
  numeric: boolean
}

/** Every setting and the names it goes by; docs/configuration.md lists the same table. */
export const SETTINGS: readonly Setting[] = [
  { key: 'port', option: 'port', flag: '--port', env: 'FLEETQ_PORT', numeric: true },
  { key: 'host', option: 'host', flag: '--host', env: 'FLEETQ_HOST', numeric: false },
  { key: 'dataDir', option: 'dataDir', flag: '--data-dir', env: 'FLEETQ_DATA_DIR', numeric: false },
  { key: 'persistence', option: 'persistence', flag: '--persistence', env: 'FLEETQ_PERSISTENCE', numeric: false },
  { key: 'maxQueuedPerClient', option: 'maxQueued', flag: '--max-queued', env: 'FLEETQ_MAX_QUEUED', numeric: true },
  { key: 'logLevel', option: 'logLevel', flag: '--log-level', env: 'FLEETQ_LOG_LEVEL', numeric: false }
]

export const CONFIG_ENV = 'FLEETQ_CONFIG'

export interface LoadedConfig {
  /** Only what was set somewhere; createBroker fills in the defaults. */
  values: BrokerConfig
  /** Absolute path of the config file read, if any. */
  configFile: string | undefined
}

/**
 * Reads the config file (from `--config` or FLEETQ_CONFIG), the environment
 * and the flags, checks each against the schema, and merges them:
 * flags beat environment beat file beat defaults. Each error names the
 * setting as its source spells it (`port`, `FLEETQ_PORT`, `--port`).
 */
export async function loadBrokerConfig (flags: BrokerFlags, env: Record<string, string | undefined> = process.env): Promise<LoadedConfig> {
  const configPath = nonEmpty(flags.config) ?? nonEmpty(env[CONFIG_ENV])
  const configFile = configPath === undefined ? undefined : resolve(configPath)
  const fromFile = configFile === undefined ? {} : await readConfigFile(configFile)
  const fromEnv = fromStrings((s) => nonEmpty(env[s.env]), (s) => s.env)
  const fromFlags = fromStrings((s) => flags[s.option], (s) => s.flag)
  return { values: { ...fromFile, ...fromEnv, ...fromFlags }, configFile }
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
  const config = check(parsed, (key) => key, ` (in ${path})`)
  // A relative dataDir means next to the config file, wherever the broker is started from.
  if (config.dataDir !== undefined && !isAbsolute(config.dataDir)) {
    config.dataDir = resolve(dirname(path), config.dataDir)
  }
  return config
}

/** Builds a partial config from string values (env or flags), naming errors with `nameOf`. */
function fromStrings (read: (s: Setting) => string | undefined, nameOf: (s: Setting) => string): BrokerConfig {
  const raw: Record<string, unknown> = {}
  for (const setting of SETTINGS) {
    const value = read(setting)
    if (value === undefined) continue
    if (setting.numeric) {
      if (!/^-?\d+$/.test(value.trim())) {
        throw new ConfigError(nameOf(setting), `${expectation(setting.key)}, got ${JSON.stringify(value)}`)
      }
      raw[setting.key] = Number(value)
    } else {
      raw[setting.key] = value
    }
  }
  const byKey = new Map(SETTINGS.map((s) => [s.key as string, nameOf(s)]))
  return check(raw, (key) => byKey.get(key) ?? key, '')
}

/** Validates against the schema; the first problem becomes a ConfigError. */
function check (value: unknown, nameOf: (key: string) => string, where: string): BrokerConfig {
  const validate = compiled()
  if (validate(value)) {
    const { $schema: _ignored, ...config } = value as BrokerConfig & { $schema?: string }
    return config
  }
  const error = validate.errors?.[0]
  if (error === undefined) throw new ConfigError('config', `is invalid${where}`)
  throw describeError(error, value, nameOf, where)
}

function describeError (error: ErrorObject, value: unknown, nameOf: (key: string) => string, where: string): ConfigError {
  if (error.keyword === 'additionalProperties' && error.instancePath === '') {
    const unknownKey = String((error.params as { additionalProperty: string }).additionalProperty)
    const hint = suggest(unknownKey)
    const known = [...SETTINGS.map((s) => s.key), ...FILE_ONLY_KEYS].join(', ')
    return new ConfigError(unknownKey, `is not a known setting${hint === undefined ? ` (known: ${known})` : ` (did you mean "${hint}"?)`}${where}`)
  }
  if (error.instancePath === '') return new ConfigError('config', `must be a JSON object${where}`)
  const path = error.instancePath.slice(1).split('/')
  if (path.length > 1 || FILE_ONLY_KEYS.includes(path[0] as typeof FILE_ONLY_KEYS[number])) {
    // Inside a structured setting: ajv's own words, at the dotted path.
    const detail = error.keyword === 'additionalProperties'
      ? `has an unknown field "${String((error.params as { additionalProperty: string }).additionalProperty)}"`
      : error.keyword === 'enum' ? `must be one of ${((error.params as { allowedValues: unknown[] }).allowedValues).map((v) => JSON.stringify(v)).join(', ')}` : String(error.message)
    return new ConfigError(path.join('.'), `${detail}${where}`)
  }
  const key = error.instancePath.slice(1).split('/')[0] ?? ''
  const got = (value as Record<string, unknown>)[key]
  return new ConfigError(nameOf(key), `${expectation(key)}, got ${JSON.stringify(got)}${where}`)
}

interface PropertySchema {
  type?: string
  enum?: unknown[]
  minimum?: number
  maximum?: number
  minLength?: number
}

/** "must be ..." from the schema itself, so the message cannot drift from the rule. */
function expectation (key: string): string {
  const property = schema().properties[key]
  if (property === undefined) return 'is not a known setting'
  if (property.enum !== undefined) return `must be one of ${property.enum.map((v) => JSON.stringify(v)).join(', ')}`
  if (property.type === 'integer') {
    if (property.minimum !== undefined && property.maximum !== undefined) {
      return `must be an integer from ${property.minimum} to ${property.maximum}`
    }
    return property.minimum !== undefined ? `must be an integer >= ${property.minimum}` : 'must be an integer'
  }
  if (property.type === 'string') return property.minLength !== undefined && property.minLength > 0 ? 'must be a non-empty string' : 'must be a string'
  return `must be of type ${String(property.type)}`
}

/** The closest known key for a typo: same letters ignoring case and -/_, or within two edits. */
function suggest (unknownKey: string): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '')
  const target = norm(unknownKey)
  let best: { key: string, distance: number } | undefined
  for (const setting of SETTINGS) {
    for (const alias of [setting.key, setting.option, setting.flag.slice(2), setting.env.slice('FLEETQ_'.length)]) {
      const distance = editDistance(target, norm(alias))
      if (distance <= 2 && (best === undefined || distance < best.distance)) best = { key: setting.key, distance }
    }
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

function nonEmpty (value: string | undefined): string | undefined {
  // An empty variable (FLEETQ_PORT=) means unset, as in most shells' `${VAR:-default}`.
  return value === undefined || value === '' ? undefined : value
}

interface ConfigSchema {
  $id: string
  properties: Record<string, PropertySchema | undefined>
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

function compiled (): ValidateFunction {
  // Compiled once, on first use (STYLE.md 8).
  cachedValidate ??= new Ajv({ allErrors: false }).compile(schema())
  return cachedValidate
}
