/**
 * `fleetq status|clients|groups|dead|schedules|tasks|log-level`: the admin
 * commands, each one or two calls of the broker's HTTP admin API
 * (docs/operations.md "Command line"). They never load the broker itself.
 */
import type { Command } from 'commander'
import type { ClientView, DeadLetterView, GroupView, RequeueResult, RequeueSelection, ScheduleView, StatusView, SubmitResult } from '../admin/admin-api.js'
import type { TerminalInput } from '../security/prompt.js'
import { AdminClient, AdminRequestError, segment, type AdminClientOptions, type AdminResponse } from './admin-client.js'
import {
  renderClients, renderDeadLetters, renderGroups, renderGroupState, renderRequeue, renderScheduleState, renderSchedules, renderStatus
} from './admin-views.js'

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:8080'

/**
 * Exit codes of the admin commands (docs/operations.md): 1 when the API
 * refused or could not be reached, 2 for a command line that is wrong
 * before anything is sent (as commander's own usage errors).
 */
export const ADMIN_EXIT = { ok: 0, failed: 1, usage: 2 } as const

/** The command line is wrong: found before any request is sent. */
export class AdminUsageError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'AdminUsageError'
  }
}

interface ConnectionFlags {
  url?: string
  user?: string
  token?: string
  json?: boolean
}

/** What a command did: the API's last answer (printed as is with `--json`) and its text for people. */
interface Outcome {
  response: AdminResponse
  text: string
}

/** Runs against the API; built after the arguments are checked, so a usage error never waits for a password. */
type Operation = (api: AdminClient) => Promise<Outcome>

type Flags = Record<string, unknown>

/** Adds the admin commands to `program`. */
export function addAdminCommands (program: Command): void {
  define(program.command('status').description('the broker at a glance: clients, traffic, groups, dead letters, schedules'),
    () => async (api) => shown(await api.get<StatusView>('api/status'), renderStatus))

  define(program.command('clients').description('the connected MQTT clients'),
    () => async (api) => shown(await api.get<ClientView[]>('api/clients'), (c) => renderClients(c)))

  const groups = define(program.command('groups').description('shared groups and task queues: depth, in flight, members'),
    () => async (api) => shown(await api.get<GroupView[]>('api/groups'), renderGroups))
  for (const action of ['pause', 'resume'] as const) {
    define(groups.command(action).argument('<key>', 'the group\'s key, {group}/{filter} as `fleetq groups` shows it')
      .description(action === 'pause' ? 'stop sending to members; messages keep arriving and wait (durable)' : 'send to members again'),
    ([key]) => async (api) => shown(await api.post<GroupView>(`api/groups/${segment(key!)}/${action}`), renderGroupState))
  }
  define(groups.command('purge').argument('<key>', 'the group\'s key').description('drop every waiting message (not those in flight)'),
    ([key]) => async (api) => shown(await api.post<{ purged: number }>(`api/groups/${segment(key!)}/purge`),
      (r) => `purged ${r.purged} message${r.purged === 1 ? '' : 's'} from group ${key!}`))

  const dead = program.command('dead').description('dead letters: tasks that failed for good or were refused')
  define(dead.command('list').description('stored dead letters, oldest first')
    .option('--type <type>', 'only this task type')
    .option('--limit <n>', 'at most n (1..1000, default 100)'),
  (_args, flags) => {
    const query = new URLSearchParams()
    if (typeof flags['type'] === 'string') query.set('type', flags['type'])
    if (flags['limit'] !== undefined) query.set('limit', String(positiveInteger('--limit', flags['limit'])))
    const path = `api/dead-letters${query.size > 0 ? `?${query.toString()}` : ''}`
    return async (api) => shown(await api.get<DeadLetterView[]>(path), (d) => renderDeadLetters(d))
  })
  define(dead.command('requeue').argument('[id...]', 'dead letter ids, as `fleetq dead list` shows them')
    .description('submit dead letters again, as attempt 1, through the task gate')
    .option('--type <type>', 'every dead letter of this task type')
    .option('--all', 'every dead letter'),
  ([ids], flags) => {
    const selection = requeueSelection(ids as unknown as string[], flags)
    const path = selection.ids?.length === 1 ? `api/dead-letters/${segment(selection.ids[0]!)}/requeue` : 'api/dead-letters/requeue'
    const body = selection.ids?.length === 1 ? {} : selection
    return async (api) => shown(await api.post<RequeueResult>(path, body), renderRequeue)
  })
  define(dead.command('delete').argument('<id>', 'the dead letter\'s id').description('delete one dead letter'),
    ([id]) => async (api) => shown(await api.delete(`api/dead-letters/${segment(id!)}`), () => `deleted dead letter ${id!}`))

  const schedules = define(program.command('schedules').description('periodic publishes and tasks: next and last runs'),
    () => async (api) => shown(await api.get<ScheduleView[]>('api/schedules'), (s) => renderSchedules(s)))
  const scheduleActions = { pause: 'paused', resume: 'resumed', trigger: 'triggered' } as const
  for (const [action, done] of Object.entries(scheduleActions) as Array<[keyof typeof scheduleActions, typeof scheduleActions[keyof typeof scheduleActions]]>) {
    define(schedules.command(action).argument('<name>', 'the schedule\'s name')
      .description({ pause: 'fire no tick until resumed (durable; missed ticks are skipped)', resume: 'fire ticks again', trigger: 'fire once now; the timetable is unchanged' }[action]),
    ([name]) => async (api) => shown(await api.post<ScheduleView>(`api/schedules/${segment(name!)}/${action}`), (s) => renderScheduleState(s, done)))
  }

  const tasks = program.command('tasks').description('submit tasks without an MQTT client')
  define(tasks.command('submit').description('submit a task as the broker (producer "admin"), checked against its schema')
    .argument('<type>', 'the task type')
    .argument('<payload>', 'the payload as JSON, e.g. \'{"width":64}\'')
    .option('--max-attempts <n>', 'attempts before it is dead-lettered')
    .option('--timeout-ms <ms>', 'how long one attempt may run')
    .option('--idempotency-key <key>', 'a second submission with this key within the window is dropped'),
  ([type, payload], flags) => {
    const body: Record<string, unknown> = { payload: parsePayload(payload!) }
    if (flags['maxAttempts'] !== undefined) body['maxAttempts'] = positiveInteger('--max-attempts', flags['maxAttempts'])
    if (flags['timeoutMs'] !== undefined) body['timeoutMs'] = positiveInteger('--timeout-ms', flags['timeoutMs'])
    if (typeof flags['idempotencyKey'] === 'string') body['idempotencyKey'] = flags['idempotencyKey']
    return async (api) => shown(await api.post<SubmitResult>(`api/tasks/${segment(type!)}`, body),
      (r) => `submitted ${r.type} task ${r.id} to ${r.topic}`)
  })

  define(program.command('log-level').description('show the broker\'s log level, or set it (every logger, until restart)')
    .argument('[level]', 'fatal, error, warn, info, debug, trace or silent'),
  ([level]) => async (api) => {
    const response = level === undefined
      ? await api.get<{ level: string }>('api/log-level')
      : await api.put<{ level: string }>('api/log-level', { level })
    return shown(response, (r) => r.level)
  })
}

/**
 * Gives `command` the connection options and an action running `build`'s
 * operation. The options sit on parents too (`groups --url x pause k`):
 * commander hands them to whichever command comes first, so they are read
 * with optsWithGlobals.
 */
function define (command: Command, build: (args: Array<string | undefined>, flags: Flags) => Operation): Command {
  connectionOptions(command)
  command.action(async (...params: unknown[]) => {
    const self = params.at(-1) as Command
    process.exit(await execute(self, () => build(self.processedArgs as Array<string | undefined>, self.opts())))
  })
  return command
}

function connectionOptions (command: Command): Command {
  return command
    .option('--url <url>', `the broker's HTTP listener (env FLEETQ_ADMIN_URL; default ${DEFAULT_ADMIN_URL})`)
    .option('--user <name>', 'a user of the broker\'s users file (env FLEETQ_ADMIN_USER); the password from FLEETQ_ADMIN_PASSWORD, else asked')
    .option('--token <token>', 'the broker\'s http.token, for reads only (env FLEETQ_HTTP_TOKEN)')
    .option('--json', 'print the API\'s JSON as it is, for scripts')
}

async function execute (command: Command, build: () => Operation): Promise<number> {
  const flags = command.optsWithGlobals<ConnectionFlags>()
  try {
    const operation = build()
    const api = new AdminClient(await connection(flags, process.env))
    const outcome = await operation(api)
    const text = flags.json === true ? outcome.response.text : outcome.text
    if (text !== '') await write(text.endsWith('\n') ? text : `${text}\n`)
    return ADMIN_EXIT.ok
  } catch (err) {
    process.stderr.write(`fleetq: ${describeAdminError(err)}\n`)
    return err instanceof AdminUsageError ? ADMIN_EXIT.usage : ADMIN_EXIT.failed
  }
}

/** Flags beat the environment; the password is never a flag (it would show in `ps`). */
async function connection (flags: ConnectionFlags, env: Record<string, string | undefined>): Promise<AdminClientOptions> {
  const url = nonEmpty(flags.url) ?? nonEmpty(env['FLEETQ_ADMIN_URL']) ?? DEFAULT_ADMIN_URL
  if (!/^https?:\/\//i.test(url)) throw new AdminUsageError(`--url must be an http:// or https:// URL, got "${url}"`)
  const user = nonEmpty(flags.user) ?? nonEmpty(env['FLEETQ_ADMIN_USER'])
  const token = nonEmpty(flags.token) ?? nonEmpty(env['FLEETQ_HTTP_TOKEN'])
  if (user === undefined) return { url, token }
  return { url, user, password: env['FLEETQ_ADMIN_PASSWORD'] ?? await askPassword(user) }
}

async function askPassword (user: string): Promise<string> {
  if (process.stdin.isTTY !== true) {
    throw new AdminUsageError(`--user ${user} needs FLEETQ_ADMIN_PASSWORD when stdin is not a terminal`)
  }
  const { askHidden } = await import('../security/prompt.js')
  const [password] = await askHidden(process.stdin as TerminalInput, process.stderr, [`Password for ${user}: `])
  return password ?? ''
}

function requeueSelection (ids: string[], flags: Flags): RequeueSelection {
  const chosen: RequeueSelection[] = []
  if (ids.length > 0) chosen.push({ ids })
  if (typeof flags['type'] === 'string') chosen.push({ type: flags['type'] })
  if (flags['all'] === true) chosen.push({ all: true })
  if (chosen.length !== 1) throw new AdminUsageError('dead requeue takes ids, --type <type> or --all (exactly one of them)')
  return chosen[0]!
}

function parsePayload (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new AdminUsageError(`the payload is not JSON: ${err instanceof Error ? err.message : String(err)}`)
  }
}

function positiveInteger (flag: string, value: unknown): number {
  const n = Number(value)
  if (typeof value !== 'string' || !/^\d+$/.test(value) || n < 1) throw new AdminUsageError(`${flag} must be a whole number from 1, got "${String(value)}"`)
  return n
}

/** One line, in the manner of the broker's own errors: `detail (CODE)`. */
export function describeAdminError (err: unknown): string {
  if (err instanceof AdminRequestError) {
    const issues = err.issues.map((i) => `${i.path === '' ? '(root)' : i.path} ${i.message}`).join('; ')
    const detail = issues === '' || err.message.includes(issues) ? err.message : `${err.message}: ${issues}`
    return `${oneLine(detail)} (${err.code})`
  }
  return oneLine(err instanceof Error ? err.message : String(err))
}

function shown<T> (response: AdminResponse<T>, render: (body: T) => string): Outcome {
  return { response, text: render(response.body) }
}

function nonEmpty (value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value
}

function oneLine (message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim()
}

/** Resolves once written, so the process can exit without cutting the output short. */
function write (text: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    process.stdout.write(text, (err) => { if (err == null) resolve(); else reject(err) })
  })
}
