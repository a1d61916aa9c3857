import type { Logger } from 'pino'
import { ErrorCodes, ScheduleError, type ValidationIssue } from '../../protocol/errors.js'
import { isRequestId, type Reply, type ReplyError } from '../../protocol/request-reply.js'
import type { ScheduleRequest } from '../../protocol/schedules.js'
import { isTopicLevel, replyTopic } from '../../protocol/topics.js'
import type { Scheduler } from './scheduler.js'
import { parseUntrustedJson } from '../untrusted-json.js'

/**
 * Schedules over MQTT, for the client library (`client.schedules`): a client
 * publishes `{ id, op, ... }` to `$fleetq/schedules/request` and gets
 * `{ id, ok, result | error }` on `$fleetq/replies/{its client id}/{id}`
 * (protocol/request-reply.ts).
 */
export async function handleScheduleRequest (scheduler: Scheduler, clientId: string, payload: Buffer, logger: Logger): Promise<{ topic: string, reply: Reply } | null> {
  const json = parseUntrustedJson(payload)
  if (!json.ok) {
    logger.warn({ clientId, issue: json.issue }, 'schedule request is not usable JSON; no id to reply to')
    return null
  }
  const parsed = json.value
  // Valid JSON of another shape (null, a number, an array) is refused like bad JSON.
  const request = (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {}) as Partial<ScheduleRequest> & Record<string, unknown>
  const id = request.id
  if (!isRequestId(id) || !isTopicLevel(clientId)) {
    logger.warn({ clientId, id }, 'schedule request without a usable id or client id; cannot reply')
    return null
  }
  const topic = replyTopic(clientId, id)
  try {
    let result: unknown
    switch (request.op) {
      case 'upsert': result = await scheduler.upsert(request['schedule'], 'api'); break
      case 'list': result = scheduler.list(); break
      case 'get': result = scheduler.get(String(request['name'])); break
      case 'remove': await scheduler.remove(String(request['name'])); result = null; break
      default: throw new ScheduleError(ErrorCodes.SCHEDULE_INVALID, `unknown schedule operation ${JSON.stringify(request.op)}: expected upsert, list, get or remove`)
    }
    return { topic, reply: { id, ok: true, result } }
  } catch (err) {
    const e = err as Error & { code?: string, issues?: ValidationIssue[] }
    const error: ReplyError = { code: e.code ?? ErrorCodes.SCHEDULE_INVALID, message: e.message }
    if (Array.isArray(e.issues) && e.issues.length > 0) error.issues = e.issues
    return { topic, reply: { id, ok: false, error } }
  }
}
