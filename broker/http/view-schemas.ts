import type { JsonSchema } from './schemas.js'

/*
 * JSON Schemas of the admin API's answers (broker/admin/admin-api.ts), for
 * the OpenAPI document only: they describe the views closely enough for a
 * generated client, without pinning every field a later version may add.
 */

const str: JsonSchema = { type: 'string' }
const int: JsonSchema = { type: 'integer' }
const bool: JsonSchema = { type: 'boolean' }
const time: JsonSchema = { type: 'string', format: 'date-time' }
const nullable = (schema: JsonSchema): JsonSchema => ({ anyOf: [schema, { type: 'null' }] })

function object (properties: Record<string, JsonSchema>, optional: readonly string[] = []): JsonSchema {
  return { type: 'object', required: Object.keys(properties).filter((key) => !optional.includes(key)), properties }
}

export const issueSchema = object({ path: str, message: str, keyword: str })

export const problemSchema: JsonSchema = {
  ...object({
    type: str,
    title: str,
    status: int,
    detail: str,
    code: { type: 'string', pattern: '^FLEETQ_' },
    instance: str,
    issues: { type: 'array', items: issueSchema }
  }, ['code', 'issues']),
  description: 'RFC 9457 problem details; `code` is the fleetq error code (docs/errors.md).'
}

const logLevel: JsonSchema = { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }

export const logLevelSchema = object({ level: logLevel })

export const whoamiSchema = object({ user: nullable(str), role: { enum: ['admin', 'read'] } })

export const statusSchema = object({
  version: str,
  id: str,
  startedAt: time,
  uptimeSeconds: { type: 'number' },
  connectedClients: int,
  queuedMessages: int,
  retainedMessages: int,
  traffic: object({ messagesReceived: int, messagesSent: int, bytesReceived: int, bytesSent: int }),
  memory: object({ rssBytes: int, heapUsedBytes: int }),
  groups: object({ count: int, depth: int, inflight: int }),
  deadLetters: int,
  schedules: object({ count: int, paused: int }),
  delayedPending: int,
  listeners: { type: 'array', items: object({ kind: str, host: str, port: int }) },
  logLevel
})

export const subscriptionSchema = object({ clientId: str, topic: str, qos: { enum: [0, 1, 2] } })

export const clientSchema = object({
  clientId: str,
  username: nullable(str),
  address: nullable(str),
  connectedAt: time,
  keepaliveSeconds: int,
  cleanSession: bool,
  subscriptions: { type: 'array', items: subscriptionSchema }
})

export const retainedSchema = object({
  topic: str,
  qos: { enum: [0, 1, 2] },
  bytes: int,
  payload: { ...nullable(str), description: 'The payload as UTF-8 text, else null (then payloadBase64). Cut at 64 KiB.' },
  payloadBase64: str,
  truncated: { const: true }
}, ['payloadBase64', 'truncated'])

export const groupSchema = object({
  key: { type: 'string', description: 'What the group is addressed by in paths (URL-encoded).' },
  group: str,
  filter: str,
  strategy: str,
  paused: bool,
  depth: int,
  inflight: int,
  oldestAgeMs: nullable(int),
  members: { type: 'array', items: object({ clientId: str, inflight: int, prefetch: int }) },
  counters: object({ enqueued: int, delivered: int, acked: int, redelivered: int, lateAcks: int, overflowed: int, expired: int, qos0Dropped: int }),
  createdAt: time
})

export const purgedSchema = object({ purged: int })

export const deadLetterSchema = object({
  id: str,
  topic: str,
  taskType: str,
  reason: str,
  error: nullable(str),
  attempts: nullable(int),
  issues: { type: 'array', items: issueSchema },
  task: { description: 'The task envelope when it can be recovered, else null.' },
  payload: nullable(str),
  deadAt: nullable(time),
  record: { description: 'The whole record as stored.' }
})

export const requeueResultSchema = object({
  requeued: int,
  skipped: { type: 'array', items: object({ id: str, reason: str }) }
})

export const scheduleSchema = object({
  name: str,
  cron: str,
  timezone: str,
  topic: str,
  task: str,
  payload: {},
  qos: { enum: [0, 1, 2] },
  retain: bool,
  catchUp: { enum: ['none', 'last', 'all'] },
  maxAttempts: int,
  timeoutMs: int,
  source: { enum: ['config', 'api'] },
  createdAt: time,
  updatedAt: time,
  lastRunAt: nullable(time),
  nextRunAt: nullable(time),
  paused: bool
}, ['topic', 'task', 'payload', 'maxAttempts', 'timeoutMs'])

export const submitResultSchema = object({ id: str, type: str, topic: str })

export const snapshotSchema: JsonSchema = {
  ...object({
    status: statusSchema,
    groups: { type: 'array', items: groupSchema },
    schedules: { type: 'array', items: scheduleSchema },
    deadLetters: { type: 'array', items: deadLetterSchema, description: 'The newest 50.' }
  }),
  description: 'The data of each `snapshot` event of GET /api/events.'
}

export const arrayOf = (items: JsonSchema): JsonSchema => ({ type: 'array', items })
