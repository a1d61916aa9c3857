import type { Logger } from 'pino'
import { ErrorCodes, ScheduleError } from '../errors.js'
import type { Scheduler } from './scheduler.js'

/**
 * Schedules over MQTT, for the client library (`client.schedules`): a client
 * publishes `{ id, op, ... }` to {@link SCHEDULE_REQUEST_TOPIC} and gets
 * `{ id, ok, result | error }` on `$fleetq/replies/{its client id}/{id}`,
 * per client so an ACL can protect it with `%c`.
 */
export const SCHEDULE_REQUEST_TOPIC = '$fleetq/schedules/request'
export const REPLIES_PREFIX = '$fleetq/replies/'

export type ScheduleRequest =
  | { id: string, op: 'upsert', schedule: unknown }
  | { id: string, op: 'list' }
  | { id: string, op: 'get', name: string }
  | { id: string, op: 'remove', name: string }

export type ScheduleReply =
  | { id: string, ok: true, result: unknown }
  | { id: string, ok: false, error: { code: string, message: string, issues?: unknown[] } }

export function replyTopic (clientId: string, requestId: string): string {
  return `${REPLIES_PREFIX}${clientId}/${requestId}`
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/

/** Runs one request; resolves with the reply topic and body, or null when there is no one to reply to. */
export async function handleScheduleRequest (scheduler: Scheduler, clientId: string, payload: Buffer, logger: Logger): Promise<{ topic: string, reply: ScheduleReply } | null> {
  let request: Partial<ScheduleRequest> & Record<string, unknown>
  try {
    request = JSON.parse(payload.toString('utf8')) as typeof request
  } catch {
    logger.warn({ clientId }, 'schedule request is not JSON; no id to reply to')
    return null
  }
  const id = request.id
  if (typeof id !== 'string' || !REQUEST_ID.test(id) || /[/+#]/.test(clientId) || clientId === '') {
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
    const e = err as Error & { code?: string, issues?: unknown[] }
    const error: { code: string, message: string, issues?: unknown[] } = { code: e.code ?? ErrorCodes.SCHEDULE_INVALID, message: e.message }
    if (Array.isArray(e.issues) && e.issues.length > 0) error.issues = e.issues
    return { topic, reply: { id, ok: false, error } }
  }
}
