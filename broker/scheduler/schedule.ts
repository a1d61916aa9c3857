import { buildEnvelope } from '../../protocol/envelope.js'
import { ErrorCodes, ScheduleError, type ValidationIssue } from '../../protocol/errors.js'
import type { CatchUp, Schedule } from '../../protocol/schedules.js'
import { isTaskTypeName, type TaskSchemas } from '../../protocol/schema-registry.js'
import { isDelayedTopic, isShareTopic, SYS_PREFIX, taskTopic } from '../../protocol/topics.js'
import { compileCron, type CompiledCron } from './cron-spec.js'

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
const KEYS = new Set(['name', 'cron', 'timezone', 'topic', 'task', 'payload', 'qos', 'retain', 'catchUp', 'maxAttempts', 'timeoutMs'])
const CATCH_UP: readonly CatchUp[] = ['none', 'last', 'all']

/**
 * Checks a schedule completely before anything is stored: the cron, the
 * zone, the target, and a task's payload against its schema, so a bad
 * schedule is refused up front with every reason (docs/scheduling.md).
 */
export function normalizeSchedule (input: unknown, schemas: TaskSchemas): { schedule: Schedule, cron: CompiledCron } {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw invalid('a schedule must be an object with name, cron and topic or task')
  }
  const raw = input as Record<string, unknown>
  const name = raw['name']
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw invalid(`name must be 1-128 letters, digits, ".", "_" or "-" (starting with a letter or digit), got ${JSON.stringify(name)}`)
  }
  const fail = (message: string, issues?: ValidationIssue[]): never => {
    throw new ScheduleError(ErrorCodes.SCHEDULE_INVALID, `schedule "${name}": ${message}`, { schedule: name, ...(issues === undefined ? {} : { issues }) })
  }
  const unknown = Object.keys(raw).filter((k) => !KEYS.has(k))
  if (unknown.length > 0) fail(`unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}`)

  const timezone = raw['timezone'] ?? 'UTC'
  const cron = compileCron({ cron: raw['cron'] as string, timezone: timezone as string }, name)

  const qos = raw['qos'] ?? 1
  if (qos !== 0 && qos !== 1 && qos !== 2) fail(`qos must be 0, 1 or 2, got ${JSON.stringify(qos)}`)
  const catchUp = raw['catchUp'] ?? 'last'
  if (!CATCH_UP.includes(catchUp as CatchUp)) fail(`catchUp must be "none", "last" or "all", got ${JSON.stringify(catchUp)}`)
  const retain = raw['retain'] ?? false
  if (typeof retain !== 'boolean') fail('retain must be true or false')

  const { topic, task, payload } = raw
  if ((topic === undefined) === (task === undefined)) fail('needs exactly one of "topic" and "task"')
  const schedule: Schedule = { name, cron: cron.cron, timezone: cron.timezone, qos: qos as 0 | 1 | 2, retain: retain as boolean, catchUp: catchUp as CatchUp }
  if (payload !== undefined) schedule.payload = payload

  if (topic !== undefined) {
    if (typeof topic !== 'string' || topic === '' || /[+#\0]/.test(topic)) fail(`topic must be a topic without wildcards, got ${JSON.stringify(topic)}`)
    const t = topic as string
    if (t.startsWith(SYS_PREFIX) || isShareTopic(t) || isDelayedTopic(t)) fail(`cannot publish to "${t}"`)
    for (const key of ['maxAttempts', 'timeoutMs']) if (raw[key] !== undefined) fail(`${key} is for task schedules`)
    schedule.topic = t
    return { schedule, cron }
  }

  if (!isTaskTypeName(task)) fail(`task must be a task type name, got ${JSON.stringify(task)}`)
  const type = task as string
  if (retain !== false) fail('retain is for topic schedules')
  if (!schemas.has(type) && !schemas.allowUnknownTypes) fail(`no schema is registered for task type "${type}"`)
  const issues = schemas.has(type) ? schemas.validatePayload(type, payload) : []
  if (issues.length > 0) {
    fail(`payload does not match the ${type} schema: ${issues.map((i) => `${i.path === '' ? '(root)' : i.path} ${i.message}`).join('; ')}`,
      issues)
  }
  schedule.task = type
  for (const key of ['maxAttempts', 'timeoutMs'] as const) {
    const value = raw[key]
    if (value === undefined) continue
    if (!Number.isSafeInteger(value) || (value as number) < 1) fail(`${key} must be an integer >= 1, got ${JSON.stringify(value)}`)
    schedule[key] = value as number
  }
  return { schedule, cron }
}

function invalid (message: string): ScheduleError {
  return new ScheduleError(ErrorCodes.SCHEDULE_INVALID, message)
}

/** The topic and bytes one tick publishes. A task tick is a new envelope (a task per tick) created at the tick's time. */
export function tickMessage (schedule: Schedule, tickAt: number, taskTopicPrefix?: string): { topic: string, payload: Buffer } {
  if (schedule.task !== undefined) {
    const envelope = buildEnvelope({
      type: schedule.task,
      payload: schedule.payload ?? null,
      producer: `schedule:${schedule.name}`,
      replyTo: false,
      maxAttempts: schedule.maxAttempts,
      timeoutMs: schedule.timeoutMs,
      createdAt: tickAt
    })
    return { topic: taskTopic(schedule.task, taskTopicPrefix), payload: Buffer.from(JSON.stringify(envelope)) }
  }
  const payload = schedule.payload === undefined
    ? Buffer.alloc(0)
    : Buffer.from(typeof schedule.payload === 'string' ? schedule.payload : JSON.stringify(schedule.payload))
  return { topic: schedule.topic as string, payload }
}

/** Same definition (ignoring bookkeeping): an unchanged config schedule keeps its last tick across restarts. */
export function sameSchedule (a: Schedule, b: Schedule): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b))
}

function canonical (s: Schedule): unknown[] {
  return [s.name, s.cron, s.timezone, s.topic, s.task, s.payload, s.qos, s.retain, s.catchUp, s.maxAttempts, s.timeoutMs]
}
