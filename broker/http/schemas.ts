import type { ValidateFunction } from 'ajv'
import { createAjv, toIssues } from '../../protocol/ajv.js'
import { ErrorCodes } from '../../protocol/errors.js'
import { settingSchema } from '../config.js'
import { HttpProblem } from './problem.js'

/*
 * The JSON Schemas of the admin API's request bodies and query parameters:
 * what each request is checked against, and what the OpenAPI document
 * (./openapi.ts) publishes, so the two are one definition.
 */

export type JsonSchema = Record<string, unknown>


const limit = (description: string): JsonSchema => ({ type: 'integer', minimum: 1, maximum: 1000, default: 100, description })

/** Query parameters of GET /api/events. */
export const eventsQuery: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    intervalMs: { type: 'integer', minimum: 200, maximum: 60000, default: 1000, description: 'Milliseconds between snapshots.' }
  }
}

export const retainedQuery: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    filter: { type: 'string', minLength: 1, default: '#', description: 'Topic filter (MQTT wildcards) the topics must match.' },
    limit: limit('At most this many, in topic order.')
  }
}

export const retainedDeleteQuery: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['topic'],
  properties: {
    topic: { type: 'string', minLength: 1, description: 'The topic whose retained message is cleared.' }
  }
}

export const deadLettersQuery: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    type: { type: 'string', minLength: 1, description: 'Only dead letters of this task type.' },
    limit: limit('At most this many, oldest first.')
  }
}

/** POST /api/dead-letters/requeue: exactly one of `ids`, `type` and `all`. */
export const requeueBody: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    ids: { type: 'array', minItems: 1, maxItems: 1000, items: { type: 'string', minLength: 1 } },
    type: { type: 'string', minLength: 1 },
    all: { const: true }
  }
}

/** POST /api/tasks/{type}. */
export const submitBody: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['payload'],
  properties: {
    payload: { description: 'The task payload, checked against the type\'s schema.' },
    maxAttempts: { type: 'integer', minimum: 1 },
    timeoutMs: { type: 'integer', minimum: 1 },
    idempotencyKey: { type: 'string', minLength: 1, maxLength: 256 }
  }
}

export const logLevelBody: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['level'],
  // The values of `logLevel` in the config schema.
  properties: { level: { enum: (settingSchema('logLevel') as { enum: string[] }).enum } }
}

/**
 * PUT /api/schedules/{name}: a schedule as the config file takes it
 * (schemas/broker-config.schema.json `ScheduleConfig`), its name optional
 * since the path gives it. The scheduler checks the rest (cron, time zone,
 * the task payload) and answers FLEETQ_SCHEDULE_INVALID and friends.
 */
export const scheduleBody: JsonSchema = (() => {
  const config = structuredClone(settingSchema('schedules.0') as JsonSchema | undefined)
  if (config === undefined) throw new Error('ScheduleConfig not found in broker-config.schema.json')
  return { ...config, required: (config['required'] as string[] | undefined ?? []).filter((key) => key !== 'name') }
})()

/** Every body and query schema, checked by one ajv (strict, all errors: protocol/ajv.ts). */
const bodyAjv = createAjv()
// Query values arrive as text: `limit=5` is checked as the number 5, and defaults fill in what is absent.
const queryAjv = createAjv({ coerceTypes: true, useDefaults: true })
const compiled = new WeakMap<JsonSchema, ValidateFunction>()

function validator (schema: JsonSchema, ajv: typeof bodyAjv): ValidateFunction {
  let validate = compiled.get(schema)
  if (validate === undefined) {
    validate = ajv.compile(schema)
    compiled.set(schema, validate)
  }
  return validate
}

/** The body if it matches `schema`, else a 400 FLEETQ_REQUEST_INVALID with every issue. */
export function checkBody (schema: JsonSchema, body: unknown): unknown {
  const validate = validator(schema, bodyAjv)
  if (!validate(body)) {
    throw new HttpProblem(400, ErrorCodes.REQUEST_INVALID, 'the body does not match its schema', { issues: toIssues(validate.errors) })
  }
  return body
}

/**
 * The query as an object (the first value of each parameter), converted and
 * defaulted per `schema`; a 400 FLEETQ_REQUEST_INVALID with every issue when
 * it does not fit. Routes without a query schema take no parameters and
 * ignore any (a cache-busting `?t=` must not break a GET).
 */
export function checkQuery (schema: JsonSchema | undefined, search: URLSearchParams): Record<string, unknown> {
  if (schema === undefined) return {}
  const query: Record<string, unknown> = {}
  for (const [name, value] of search) if (!(name in query)) query[name] = value
  const validate = validator(schema, queryAjv)
  if (!validate(query)) {
    // Paths point into the query as an object: `/limit`.
    throw new HttpProblem(400, ErrorCodes.REQUEST_INVALID, 'the query parameters are not valid', { issues: toIssues(validate.errors) })
  }
  return query
}
