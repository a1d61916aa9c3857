/**
 * How the admin commands show what the API answers (broker/admin/admin-api.ts
 * views) to people; `--json` prints the API's JSON instead.
 */
import type { ClientView, DeadLetterView, GroupView, RequeueResult, ScheduleView, StatusView } from '../admin/admin-api.js'
import { formatBytes, formatDuration, formatFields, formatTable, formatWhen, truncate } from './table.js'

export function renderStatus (s: StatusView): string {
  const traffic = s.traffic
  const fields: Array<[string, string]> = [
    ['version', s.version],
    ['broker id', s.id],
    ['started', `${s.startedAt} (up ${formatDuration(s.uptimeSeconds * 1000)})`],
    ['clients', String(s.connectedClients)],
    ['queued', `${s.queuedMessages} messages for offline sessions`],
    ['retained', `${s.retainedMessages} messages`],
    ['traffic in', `${traffic.messagesReceived} messages, ${formatBytes(traffic.bytesReceived)}`],
    ['traffic out', `${traffic.messagesSent} messages, ${formatBytes(traffic.bytesSent)}`],
    ['memory', `rss ${formatBytes(s.memory.rssBytes)}, heap ${formatBytes(s.memory.heapUsedBytes)}`],
    ['groups', `${s.groups.count} (depth ${s.groups.depth}, in flight ${s.groups.inflight})`],
    ['dead letters', String(s.deadLetters)],
    ['schedules', `${s.schedules.count} (${s.schedules.paused} paused)`],
    ['delayed', `${s.delayedPending} pending`],
    ['listeners', s.listeners.map((l) => `${l.kind} ${l.host}:${l.port}`).join(', ')],
    ['log level', s.logLevel]
  ]
  return formatFields(fields)
}

export function renderClients (clients: ClientView[], now = Date.now()): string {
  if (clients.length === 0) return 'no clients connected'
  return formatTable([
    { header: 'CLIENT ID' }, { header: 'USER' }, { header: 'ADDRESS' }, { header: 'CONNECTED', align: 'right' },
    { header: 'KEEPALIVE', align: 'right' }, { header: 'CLEAN' }, { header: 'SUBS', align: 'right' }
  ], clients.map((c) => [
    c.clientId, c.username ?? '-', c.address ?? '-', formatWhen(c.connectedAt, now),
    `${c.keepaliveSeconds}s`, c.cleanSession ? 'yes' : 'no', String(c.subscriptions.length)
  ]))
}

export function renderGroups (groups: GroupView[]): string {
  if (groups.length === 0) return 'no shared groups'
  return formatTable([
    { header: 'KEY' }, { header: 'STATE' }, { header: 'STRATEGY' }, { header: 'DEPTH', align: 'right' },
    { header: 'IN FLIGHT', align: 'right' }, { header: 'MEMBERS', align: 'right' }, { header: 'OLDEST', align: 'right' },
    { header: 'DELIVERED', align: 'right' }, { header: 'ACKED', align: 'right' }
  ], groups.map((g) => [
    g.key, g.paused ? 'paused' : 'active', g.strategy, String(g.depth), String(g.inflight), String(g.members.length),
    g.oldestAgeMs === null ? '-' : formatDuration(g.oldestAgeMs), String(g.counters.delivered), String(g.counters.acked)
  ]))
}

/** One line after pause or resume. */
export function renderGroupState (g: GroupView): string {
  return `group ${g.key} ${g.paused ? 'paused' : 'resumed'} (depth ${g.depth}, in flight ${g.inflight})`
}

export function renderDeadLetters (letters: DeadLetterView[], now = Date.now()): string {
  if (letters.length === 0) return 'no dead letters'
  return formatTable([
    { header: 'ID' }, { header: 'TYPE' }, { header: 'REASON' }, { header: 'ATTEMPTS', align: 'right' },
    { header: 'AGE', align: 'right' }, { header: 'ERROR' }
  ], letters.map((d) => [
    d.id, d.taskType, d.reason, d.attempts === null ? '-' : String(d.attempts),
    d.deadAt === null ? '-' : formatWhen(d.deadAt, now).replace(/ ago$/, ''), truncate(describeFailure(d), 60)
  ]))
}

export function renderRequeue (result: RequeueResult): string {
  const lines = [`requeued ${result.requeued} dead letter${result.requeued === 1 ? '' : 's'}`]
  for (const skipped of result.skipped) lines.push(`skipped ${skipped.id}: ${skipped.reason}`)
  return lines.join('\n')
}

export function renderSchedules (schedules: ScheduleView[], now = Date.now()): string {
  if (schedules.length === 0) return 'no schedules'
  return formatTable([
    { header: 'NAME' }, { header: 'STATE' }, { header: 'CRON' }, { header: 'TIMEZONE' }, { header: 'TARGET' },
    { header: 'NEXT', align: 'right' }, { header: 'LAST', align: 'right' }, { header: 'SOURCE' }
  ], schedules.map((s) => [
    s.name, s.paused ? 'paused' : 'active', s.cron, s.timezone, s.task !== undefined ? `task ${s.task}` : `topic ${s.topic ?? '-'}`,
    s.paused ? '-' : formatWhen(s.nextRunAt, now), formatWhen(s.lastRunAt, now), s.source
  ]))
}

/** One line after pause, resume or trigger. */
export function renderScheduleState (s: ScheduleView, action: 'paused' | 'resumed' | 'triggered', now = Date.now()): string {
  if (action === 'paused') return `schedule ${s.name} paused`
  return `schedule ${s.name} ${action} (${s.paused ? 'paused' : `next run ${formatWhen(s.nextRunAt, now)}`})`
}

/** The worker's error, else the schema issues of a gate dead letter. */
function describeFailure (d: DeadLetterView): string {
  if (d.error !== null && d.error !== '') return d.error
  return d.issues.map((i) => `${i.path === '' ? '(root)' : i.path} ${i.message}`).join('; ')
}
