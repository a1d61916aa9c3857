import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Ajv, AnySchemaObject, ValidateFunction } from 'ajv'
import { createAjv, toIssues } from './ajv.js'
import { ErrorCodes, FleetqError, TaskValidationError, UnknownTaskTypeError, type ValidationIssue } from './errors.js'

const SCHEMA_SUFFIX = '.schema.json'
const ENVELOPE_FILE = 'task-envelope.schema.json'
/** Same rule as the envelope's `type` (schemas/task-envelope.schema.json): one topic level, no wildcards. */
const TASK_TYPE = /^[a-z0-9][a-z0-9._-]*$/

/** Whether `name` can be a task type (lower case, one topic level). */
export function isTaskTypeName (name: unknown): name is string {
  return typeof name === 'string' && TASK_TYPE.test(name)
}

export interface TaskSchemasOptions {
  /**
   * A directory of user schemas: every `*.schema.json` in it is a task type
   * named after the file (`resize.schema.json` → `resize`), next to the shipped ones.
   */
  dir?: string
  /**
   * Also register the example task types shipped in the package's
   * schemas/tasks/; with `false`, only those of `dir` (and `register()`).
   * @defaultValue true
   */
  includeExamples?: boolean
  /**
   * Accept task types that have no schema (their payloads are not checked).
   * @defaultValue false
   */
  allowUnknownTypes?: boolean
  /**
   * Largest payload, serialized as JSON, in bytes; larger ones fail with
   * keyword `maxBytes`.
   * @defaultValue 262144 (256 KiB)
   */
  maxPayloadBytes?: number
}

export const taskSchemasDefaults = Object.freeze({
  allowUnknownTypes: false,
  maxPayloadBytes: 256 * 1024
})

/**
 * The task envelope and payload schemas, compiled once by one ajv instance
 * at start-up. Shared by `submit()`, workers and the broker's task gate, so
 * all three refuse exactly the same payloads.
 */
export class TaskSchemas {
  readonly allowUnknownTypes: boolean
  readonly maxPayloadBytes: number
  readonly #ajv: Ajv
  readonly #validators = new Map<string, ValidateFunction>()
  #envelope: ValidateFunction | undefined

  private constructor (allowUnknownTypes: boolean, maxPayloadBytes: number) {
    this.allowUnknownTypes = allowUnknownTypes
    this.maxPayloadBytes = maxPayloadBytes
    this.#ajv = createAjv()
  }

  /**
   * Compiles the envelope and every shipped task schema (`schemas/` of the
   * package), then the user schemas of `options.dir`. Fails with
   * `FLEETQ_SCHEMA_INVALID` naming the file on a schema without `$id` or one
   * that does not compile.
   */
  static async load (options: TaskSchemasOptions = {}): Promise<TaskSchemas> {
    const maxPayloadBytes = options.maxPayloadBytes ?? taskSchemasDefaults.maxPayloadBytes
    if (!Number.isInteger(maxPayloadBytes) || maxPayloadBytes <= 0) {
      throw new FleetqError(ErrorCodes.SCHEMA_OPTIONS_INVALID, `TaskSchemas: maxPayloadBytes must be an integer > 0, got ${String(options.maxPayloadBytes)}`)
    }
    const schemas = new TaskSchemas(options.allowUnknownTypes ?? taskSchemasDefaults.allowUnknownTypes, maxPayloadBytes)
    const shipped = packageSchemasDir()
    const envelopeFile = join(shipped, ENVELOPE_FILE)
    schemas.#envelope = schemas.#compile(await readSchemaFile(envelopeFile), envelopeFile)
    if (options.includeExamples ?? true) {
      for (const file of await schemaFiles(join(shipped, 'tasks'))) {
        schemas.#registerFile(file, await readSchemaFile(file))
      }
    }
    if (options.dir !== undefined) {
      for (const file of await schemaFiles(options.dir)) {
        schemas.#registerFile(file, await readSchemaFile(file))
      }
    }
    return schemas
  }

  /**
   * Registers the payload schema of `type` (draft-07, with an `$id`). Fails
   * with `FLEETQ_SCHEMA_INVALID` if the type is taken, badly named, or the
   * schema does not compile.
   */
  register (type: string, schema: object): void {
    this.#register(type, schema, `schema of "${type}"`)
  }

  has (type: string): boolean {
    return this.#validators.has(type)
  }

  /** The registered task types, sorted. */
  types (): string[] {
    return [...this.#validators.keys()].sort()
  }

  /**
   * Every failing JSON path of `payload` ([] when valid). Throws
   * UnknownTaskTypeError for a type without a schema, unless unknown types
   * are allowed.
   *
   * `sourceBytes`: the length of the JSON text `payload` was parsed from (a
   * received task), when known. JSON.stringify of a parsed value is at most
   * {@link MAX_REENCODE_GROWTH} times its source, so a source that small
   * needs no serialising to know it is within `maxPayloadBytes`.
   */
  validatePayload (type: string, payload: unknown, sourceBytes?: number): ValidationIssue[] {
    const validate = this.#validators.get(type)
    if (validate === undefined) {
      if (this.allowUnknownTypes) return []
      throw new UnknownTaskTypeError(type)
    }
    if (sourceBytes !== undefined && sourceBytes * MAX_REENCODE_GROWTH <= this.maxPayloadBytes) {
      return validate(payload) ? [] : toIssues(validate.errors)
    }
    const size = serializedBytes(payload)
    // Checked first, and alone: no point walking a payload we refuse anyway.
    if (size > this.maxPayloadBytes) {
      return [{ path: '', message: `must be at most ${this.maxPayloadBytes} bytes as JSON, got ${size}`, keyword: 'maxBytes' }]
    }
    return validate(payload) ? [] : toIssues(validate.errors)
  }

  /** Throws TaskValidationError (`FLEETQ_PAYLOAD_INVALID`) listing every issue. */
  assertPayload (type: string, payload: unknown): void {
    const issues = this.validatePayload(type, payload)
    if (issues.length > 0) throw new TaskValidationError(type, issues)
  }

  /**
   * The envelope's own fields ([] when valid); its `payload` is checked by
   * {@link validatePayload}.
   */
  validateEnvelope (envelope: unknown): ValidationIssue[] {
    const validate = this.#envelope as ValidateFunction
    return validate(envelope) ? [] : toIssues(validate.errors)
  }

  #registerFile (file: string, schema: unknown): void {
    const type = basename(file).slice(0, -SCHEMA_SUFFIX.length)
    // A file copied from another type with its $id left as it was would
    // otherwise register under one name and resolve $refs under another.
    const id = (schema as { $id?: unknown } | null)?.$id
    const idFile = typeof id === 'string' ? /([^/]+\.schema\.json)$/.exec(id)?.[1] : undefined
    if (idFile !== undefined && idFile !== basename(file)) {
      throw schemaError(file, `$id ${id as string} names ${idFile}, not ${basename(file)}: the file name is the task type`)
    }
    this.#register(type, schema, file)
  }

  #register (type: string, schema: unknown, source: string): void {
    if (!TASK_TYPE.test(type)) {
      throw schemaError(source, `task type "${type}" must match ${TASK_TYPE.source} (lower case, one topic level)`)
    }
    if (this.#validators.has(type)) throw schemaError(source, `task type "${type}" is already registered`)
    this.#validators.set(type, this.#compile(schema, source))
  }

  #compile (schema: unknown, source: string): ValidateFunction {
    if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) throw schemaError(source, 'a schema must be a JSON object')
    const id = (schema as AnySchemaObject).$id
    if (typeof id !== 'string' || id === '') throw schemaError(source, 'the schema has no $id')
    if (this.#ajv.getSchema(id) !== undefined) throw schemaError(source, `$id ${id} is already used by another schema`)
    try {
      return this.#ajv.compile(schema as AnySchemaObject)
    } catch (err) {
      // ajv keeps a schema that failed to compile under its $id; drop it so
      // a corrected schema with the same $id can be registered.
      this.#ajv.removeSchema(id)
      throw schemaError(source, (err as Error).message, err)
    }
  }
}

/**
 * How much larger JSON.stringify's text of a parsed value can be than the
 * text it was parsed from: whitespace and escapes only shrink, a number
 * written with an exponent grows most (`1e20`, 4 bytes, is written back as
 * 21 digits).
 */
const MAX_REENCODE_GROWTH = 6

function serializedBytes (payload: unknown): number {
  const text = JSON.stringify(payload) as string | undefined
  return text === undefined ? 0 : Buffer.byteLength(text)
}

function schemaError (source: string, message: string, cause?: unknown): FleetqError {
  return new FleetqError(ErrorCodes.SCHEMA_INVALID, `${source}: ${message}`, { cause })
}

/**
 * `schemas/` of the package: `../schemas` from protocol/schema-registry.ts (run
 * by tsx or vitest), `../../schemas` from dist/protocol/schema-registry.js.
 */
function packageSchemasDir (): string {
  for (const relative of ['../schemas/', '../../schemas/']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url))
    if (existsSync(join(dir, ENVELOPE_FILE))) return dir
  }
  throw schemaError('schemas/', `${ENVELOPE_FILE} not found next to the fleetq package`)
}

async function schemaFiles (dir: string): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    throw schemaError(dir, `cannot read the schema directory: ${(err as Error).message}`, err)
  }
  // Sorted, so that which of two clashing files fails does not depend on the file system.
  return names.filter((name) => name.endsWith(SCHEMA_SUFFIX)).sort().map((name) => join(dir, name))
}

async function readSchemaFile (file: string): Promise<unknown> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw schemaError(file, `cannot read: ${(err as Error).message}`, err)
  }
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw schemaError(file, `not valid JSON: ${(err as Error).message}`, err)
  }
}
