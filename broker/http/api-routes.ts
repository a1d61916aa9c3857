import type { AdminApi, RequeueSelection } from '../admin/admin-api.js'
import { ErrorCodes } from '../../protocol/errors.js'
import type { LogLevel } from '../options.js'
import { takeSnapshot, type EventStreams } from './events.js'
import { HttpProblem } from './problem.js'
import type { Reply, Route } from './router.js'
import {
  deadLettersQuery, eventsQuery, logLevelBody, requeueBody, retainedDeleteQuery, retainedQuery, scheduleBody, submitBody
} from './schemas.js'
import {
  arrayOf, clientSchema, deadLetterSchema, groupSchema, logLevelSchema, purgedSchema, requeueResultSchema, retainedSchema,
  scheduleSchema, snapshotSchema, statusSchema, submitResultSchema, subscriptionSchema, whoamiSchema
} from './view-schemas.js'

/*
 * The admin API (docs/operations.md): one row per endpoint, each a call of
 * broker.admin (broker/admin/admin-api.ts). The router checks access, query
 * and body before a handler runs; admin errors become problem+json.
 */

const ok = (json: unknown): Reply => ({ status: 200, json })
const noContent: Reply = { status: 204 }
const deleted = { status: 204, description: 'Done; no body.' }

export function apiRoutes (admin: AdminApi, streams: EventStreams): Route[] {
  return [
    {
      method: 'GET', path: '/api/whoami', access: 'read', tag: 'access', summary: 'Who the credentials are, and their role',
      response: { status: 200, schema: whoamiSchema, description: 'The caller' },
      handle: ({ caller }) => ok({ user: caller?.user ?? null, role: caller?.role ?? 'admin' })
    },
    {
      method: 'GET', path: '/api/status', access: 'read', tag: 'broker', summary: 'The whole broker at a glance',
      response: { status: 200, schema: statusSchema, description: 'StatusView' },
      handle: () => ok(admin.status())
    },
    {
      method: 'GET', path: '/api/events', access: 'read', tag: 'broker', summary: 'Server-sent events: a `snapshot` at once and every intervalMs',
      query: eventsQuery,
      response: { status: 200, contentType: 'text/event-stream', schema: snapshotSchema, description: '`event: snapshot` with the data below; `: ping` comments' },
      handle: ({ req, res, query }) => {
        streams.open(req, res, query['intervalMs'] as number, () => takeSnapshot(admin))
        return 'handled'
      }
    },
    {
      method: 'GET', path: '/api/clients', access: 'read', tag: 'clients', summary: 'Connected clients',
      response: { status: 200, schema: arrayOf(clientSchema), description: 'ClientView[]' },
      handle: () => ok(admin.clients())
    },
    {
      method: 'GET', path: '/api/clients/{clientId}', access: 'read', tag: 'clients', summary: 'One connected client',
      response: { status: 200, schema: clientSchema, description: 'ClientView' },
      handle: ({ params }) => ok(admin.client(params['clientId']!))
    },
    {
      method: 'DELETE', path: '/api/clients/{clientId}', access: 'admin', tag: 'clients', summary: 'Disconnect a client (a persistent session stays)',
      response: deleted,
      handle: async ({ params }) => { await admin.disconnectClient(params['clientId']!); return noContent }
    },
    {
      method: 'GET', path: '/api/subscriptions', access: 'read', tag: 'clients', summary: 'Every subscription of every connected client',
      response: { status: 200, schema: arrayOf(subscriptionSchema), description: 'SubscriptionView[]' },
      handle: () => ok(admin.subscriptions())
    },
    {
      method: 'GET', path: '/api/retained', access: 'read', tag: 'retained', summary: 'Retained messages matching a filter, in topic order',
      query: retainedQuery,
      response: { status: 200, schema: arrayOf(retainedSchema), description: 'RetainedView[]' },
      handle: async ({ query }) => ok(await admin.retained(query['filter'] as string, query['limit'] as number))
    },
    {
      method: 'DELETE', path: '/api/retained', access: 'admin', tag: 'retained', summary: 'Clear the retained message of a topic',
      query: retainedDeleteQuery,
      response: deleted,
      handle: async ({ query }) => { await admin.deleteRetained(query['topic'] as string); return noContent }
    },
    {
      method: 'GET', path: '/api/groups', access: 'read', tag: 'groups', summary: 'Shared-subscription groups and task queues',
      response: { status: 200, schema: arrayOf(groupSchema), description: 'GroupView[]' },
      handle: () => ok(admin.groups())
    },
    {
      method: 'GET', path: '/api/groups/{key}', access: 'read', tag: 'groups', summary: 'One group',
      response: { status: 200, schema: groupSchema, description: 'GroupView' },
      handle: ({ params }) => ok(admin.group(params['key']!))
    },
    {
      method: 'POST', path: '/api/groups/{key}/pause', access: 'admin', tag: 'groups', summary: 'Pause a group: messages are kept, none is sent',
      response: { status: 200, schema: groupSchema, description: 'GroupView' },
      handle: async ({ params }) => ok(await admin.pauseGroup(params['key']!))
    },
    {
      method: 'POST', path: '/api/groups/{key}/resume', access: 'admin', tag: 'groups', summary: 'Resume a paused group',
      response: { status: 200, schema: groupSchema, description: 'GroupView' },
      handle: async ({ params }) => ok(await admin.resumeGroup(params['key']!))
    },
    {
      method: 'POST', path: '/api/groups/{key}/purge', access: 'admin', tag: 'groups', summary: 'Drop every waiting message (not those in flight)',
      response: { status: 200, schema: purgedSchema, description: 'How many were dropped' },
      handle: async ({ params }) => ok(await admin.purgeGroup(params['key']!))
    },
    {
      method: 'DELETE', path: '/api/groups/{key}', access: 'admin', tag: 'groups', summary: 'Delete a group with no members, and its messages',
      response: deleted,
      handle: async ({ params }) => { await admin.deleteGroup(params['key']!); return noContent }
    },
    {
      method: 'GET', path: '/api/dead-letters', access: 'read', tag: 'dead letters', summary: 'Stored dead letters, oldest first',
      query: deadLettersQuery,
      response: { status: 200, schema: arrayOf(deadLetterSchema), description: 'DeadLetterView[]' },
      handle: ({ query }) => ok(admin.deadLetters(query['type'] as string | undefined, query['limit'] as number))
    },
    {
      method: 'POST', path: '/api/dead-letters/requeue', access: 'admin', tag: 'dead letters', summary: 'Requeue dead letters by ids, by task type, or all',
      body: requeueBody,
      response: { status: 200, schema: requeueResultSchema, description: 'RequeueResult' },
      handle: async ({ body }) => ok(await admin.requeueDeadLetters(body as RequeueSelection))
    },
    {
      method: 'GET', path: '/api/dead-letters/{id}', access: 'read', tag: 'dead letters', summary: 'One dead letter',
      response: { status: 200, schema: deadLetterSchema, description: 'DeadLetterView' },
      handle: ({ params }) => ok(admin.deadLetter(params['id']!))
    },
    {
      method: 'POST', path: '/api/dead-letters/{id}/requeue', access: 'admin', tag: 'dead letters', summary: 'Requeue one dead letter as attempt 1',
      response: { status: 200, schema: requeueResultSchema, description: 'RequeueResult' },
      handle: async ({ params }) => {
        const id = params['id']!
        // FLEETQ_DEAD_LETTER_NOT_FOUND for an unknown id, whatever a selection of one would answer.
        admin.deadLetter(id)
        return ok(await admin.requeueDeadLetters({ ids: [id] }))
      }
    },
    {
      method: 'DELETE', path: '/api/dead-letters/{id}', access: 'admin', tag: 'dead letters', summary: 'Delete one dead letter',
      response: deleted,
      handle: async ({ params }) => { await admin.deleteDeadLetter(params['id']!); return noContent }
    },
    {
      method: 'GET', path: '/api/schedules', access: 'read', tag: 'schedules', summary: 'Periodic schedules',
      response: { status: 200, schema: arrayOf(scheduleSchema), description: 'ScheduleView[]' },
      handle: () => ok(admin.schedules())
    },
    {
      method: 'GET', path: '/api/schedules/{name}', access: 'read', tag: 'schedules', summary: 'One schedule',
      response: { status: 200, schema: scheduleSchema, description: 'ScheduleView' },
      handle: ({ params }) => ok(admin.schedule(params['name']!))
    },
    {
      method: 'PUT', path: '/api/schedules/{name}', access: 'admin', tag: 'schedules', summary: 'Create or replace a schedule',
      body: scheduleBody,
      response: { status: 200, schema: scheduleSchema, description: 'ScheduleView' },
      handle: async ({ params, body }) => {
        const name = params['name']!
        const input = body as { name?: unknown }
        if (input.name !== undefined && input.name !== name) {
          throw new HttpProblem(400, ErrorCodes.REQUEST_INVALID, `the body's name "${String(input.name)}" is not the path's "${name}"`,
            { issues: [{ path: '/name', message: 'must equal the name in the path', keyword: 'const' }] })
        }
        return ok(await admin.upsertSchedule({ ...input, name }))
      }
    },
    {
      method: 'POST', path: '/api/schedules/{name}/pause', access: 'admin', tag: 'schedules', summary: 'Pause a schedule (missed ticks are skipped on resume)',
      response: { status: 200, schema: scheduleSchema, description: 'ScheduleView' },
      handle: async ({ params }) => ok(await admin.pauseSchedule(params['name']!))
    },
    {
      method: 'POST', path: '/api/schedules/{name}/resume', access: 'admin', tag: 'schedules', summary: 'Resume a paused schedule',
      response: { status: 200, schema: scheduleSchema, description: 'ScheduleView' },
      handle: async ({ params }) => ok(await admin.resumeSchedule(params['name']!))
    },
    {
      method: 'POST', path: '/api/schedules/{name}/trigger', access: 'admin', tag: 'schedules', summary: 'Run a schedule once, now',
      response: { status: 200, schema: scheduleSchema, description: 'ScheduleView' },
      handle: async ({ params }) => ok(await admin.triggerSchedule(params['name']!))
    },
    {
      method: 'DELETE', path: '/api/schedules/{name}', access: 'admin', tag: 'schedules', summary: 'Remove a schedule',
      response: deleted,
      handle: async ({ params }) => { await admin.removeSchedule(params['name']!); return noContent }
    },
    {
      method: 'POST', path: '/api/tasks/{type}', access: 'admin', tag: 'tasks', summary: 'Submit a task as the broker (producer `admin`)',
      body: submitBody,
      response: { status: 202, schema: submitResultSchema, description: 'Accepted by the task gate' },
      handle: async ({ params, body }) => {
        const { payload, maxAttempts, timeoutMs, idempotencyKey } = body as { payload: unknown, maxAttempts?: number, timeoutMs?: number, idempotencyKey?: string }
        const options = {
          ...(maxAttempts !== undefined ? { maxAttempts } : {}),
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
          ...(idempotencyKey !== undefined ? { idempotencyKey } : {})
        }
        return { status: 202, json: await admin.submitTask(params['type']!, payload, options) }
      }
    },
    {
      method: 'GET', path: '/api/log-level', access: 'read', tag: 'broker', summary: 'The log level',
      response: { status: 200, schema: logLevelSchema, description: 'The current level' },
      handle: () => ok({ level: admin.logLevel() })
    },
    {
      method: 'PUT', path: '/api/log-level', access: 'admin', tag: 'broker', summary: 'Change the log level of every logger of the broker',
      body: logLevelBody,
      response: { status: 200, schema: logLevelSchema, description: 'The new level' },
      handle: ({ body }) => {
        admin.setLogLevel((body as { level: LogLevel }).level)
        return ok({ level: admin.logLevel() })
      }
    }
  ]
}
