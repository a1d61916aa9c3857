import type { Logger } from 'pino'
import { AdminError, ErrorCodes, type ValidationIssue } from '../../protocol/errors.js'
import { isTaskTypeName } from '../../protocol/schema-registry.js'
import { DEAD_LETTER_PREFIX } from '../../protocol/topics.js'
import type { SharedGroup, WaitingMessage } from '../shared/shared-group.js'
import type { SharedSubscriptions } from '../shared/shared-subscriptions.js'
import { parseUntrustedJson } from '../untrusted-json.js'
import type { DeadLetterView, RequeueResult, RequeueSelection } from './admin-api.js'
import type { SubmitOptions, TaskSubmission } from './task-submission.js'

/** A dead letter's task, ready to submit again; or why it cannot be. */
type Recovered = { type: string, payload: unknown, options: SubmitOptions } | { skip: string }

/** The group every dead letter is kept in: `$share/dead-letters/{prefix}+` (protocol/topics.ts DEAD_LETTER_GROUP). */
const DEAD_LETTER_GROUP_NAME = 'dead-letters'

/**
 * Dead letters (`/api/dead-letters`): the waiting messages of the durable
 * dead-letter group, one per refused or failed task (docs/tasks.md). Its id
 * is the message's store-wide sequence number. Two shapes are stored: the
 * task gate's (GateDeadLetter: the original submission and its issues) and a
 * worker's (DeadLetter: the envelope, the last error); both are read as
 * untrusted JSON, since any client may publish to `$fleetq/dead/...`.
 */
export class DeadLetterAdmin {
  readonly #shared: SharedSubscriptions
  readonly #submission: TaskSubmission
  readonly #logger: Logger
  /** The dead-letter groups' filters: the default prefix's, and the configured one's. */
  readonly #filters: Set<string>
  /** Parsed once per stored message: keyed by its payload, which the group keeps as long as it keeps the message. */
  readonly #views = new WeakMap<Buffer, DeadLetterView>()
  /** Being requeued now: a second requeue of the same one skips it rather than submit it twice. */
  readonly #requeueing = new Set<number>()

  constructor (shared: SharedSubscriptions, submission: TaskSubmission, deadLetterPrefix: string, logger: Logger) {
    this.#shared = shared
    this.#submission = submission
    this.#logger = logger
    this.#filters = new Set([`${DEAD_LETTER_PREFIX}+`, `${deadLetterPrefix}+`])
  }

  /** How many are stored (waiting in the dead-letter groups). */
  count (): number {
    return this.#groups().reduce((sum, g) => sum + g.depth, 0)
  }

  /** At most `limit`, oldest first: the oldest ones, or the newest ones. */
  list (type: string | undefined, limit: number, newest = false): DeadLetterView[] {
    const stored = this.#stored()
    if (newest) stored.reverse()
    const views: DeadLetterView[] = []
    for (const { message } of stored) {
      const view = this.#view(message)
      if (type !== undefined && view.taskType !== type) continue
      views.push(view)
      if (views.length >= limit) break
    }
    return newest ? views.reverse() : views
  }

  get (id: string): DeadLetterView {
    return this.#view(this.#find(id).message)
  }

  async delete (id: string): Promise<void> {
    const { group, message } = this.#find(id)
    if (!await group.removeWaiting(message.seq)) throw notFound(id)
  }

  /**
   * Submits each selected dead letter's task again as a new first attempt,
   * through the task gate, then removes the dead letter. One with no task to
   * recover stays and is reported in `skipped`.
   */
  async requeue (selection: RequeueSelection): Promise<RequeueResult> {
    const selected = this.#select(selection)
    const result: RequeueResult = { requeued: 0, skipped: [] }
    for (const { group, message } of selected) {
      const id = String(message.seq)
      if (this.#requeueing.has(message.seq)) {
        result.skipped.push({ id, reason: 'already being requeued' })
        continue
      }
      const recovered = recover(this.#view(message))
      if ('skip' in recovered) {
        result.skipped.push({ id, reason: recovered.skip })
        continue
      }
      this.#requeueing.add(message.seq)
      try {
        const { envelope, decision } = await this.#submission.resubmit(recovered.type, recovered.payload, recovered.options)
        if (!await group.removeWaiting(message.seq)) {
          this.#logger.warn({ deadLetter: id }, 'requeued a dead letter that was no longer waiting (taken by a subscriber meanwhile)')
        }
        result.requeued++
        this.#logger.info({ deadLetter: id, type: recovered.type, taskId: envelope.id, gate: decision.action }, 'dead letter requeued')
      } finally {
        this.#requeueing.delete(message.seq)
      }
    }
    return result
  }

  #select (selection: RequeueSelection): Array<{ group: SharedGroup, message: WaitingMessage }> {
    const given = selection === null || typeof selection !== 'object' ? [] : (['ids', 'type', 'all'] as const).filter((k) => selection[k] !== undefined)
    if (given.length !== 1) {
      throw new AdminError(ErrorCodes.REQUEST_INVALID, 'a requeue takes exactly one of "ids", "type" and "all"',
        { issues: [{ path: '', message: 'must have exactly one of ids, type and all', keyword: 'oneOf' }] })
    }
    if (selection.ids !== undefined) {
      const ids = selection.ids
      if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => typeof id !== 'string')) {
        throw new AdminError(ErrorCodes.REQUEST_INVALID, '"ids" must be a non-empty array of dead letter ids',
          { issues: [{ path: '/ids', message: 'must be a non-empty array of strings', keyword: 'type' }] })
      }
      // Every id is checked before anything is requeued.
      return [...new Set(ids)].map((id) => this.#find(id))
    }
    if (selection.type !== undefined) {
      const type = selection.type
      if (typeof type !== 'string' || type === '') {
        throw new AdminError(ErrorCodes.REQUEST_INVALID, '"type" must be a task type', { issues: [{ path: '/type', message: 'must be a non-empty string', keyword: 'type' }] })
      }
      return this.#stored().filter(({ message }) => this.#view(message).taskType === type)
    }
    if (selection.all !== true) {
      throw new AdminError(ErrorCodes.REQUEST_INVALID, '"all" must be true', { issues: [{ path: '/all', message: 'must be true', keyword: 'const' }] })
    }
    return this.#stored()
  }

  #groups (): SharedGroup[] {
    return this.#shared.groups().filter((g) => g.definition.group === DEAD_LETTER_GROUP_NAME && this.#filters.has(g.definition.filter))
  }

  /** Every stored dead letter, oldest first. */
  #stored (): Array<{ group: SharedGroup, message: WaitingMessage }> {
    const all = this.#groups().flatMap((group) => group.waiting().map((message) => ({ group, message })))
    return all.sort((a, b) => a.message.seq - b.message.seq)
  }

  #find (id: string): { group: SharedGroup, message: WaitingMessage } {
    const seq = /^[1-9][0-9]{0,15}$/.test(id) ? Number(id) : NaN
    if (Number.isSafeInteger(seq)) {
      for (const group of this.#groups()) {
        const message = group.waiting().find((m) => m.seq === seq)
        if (message !== undefined) return { group, message }
      }
    }
    throw notFound(id)
  }

  #view (message: WaitingMessage): DeadLetterView {
    let view = this.#views.get(message.payload)
    if (view === undefined) {
      view = deadLetterView(message)
      this.#views.set(message.payload, view)
    }
    return view
  }
}

function notFound (id: string): AdminError {
  return new AdminError(ErrorCodes.DEAD_LETTER_NOT_FOUND, `no dead letter "${id}"`)
}

type Json = Record<string, unknown>

const isObject = (value: unknown): value is Json => value !== null && typeof value === 'object' && !Array.isArray(value)
const stringOr = <T>(value: unknown, fallback: T): string | T => (typeof value === 'string' ? value : fallback)

/** A full task envelope (as the task gate tells one from a bare payload). */
function isEnvelope (value: unknown): value is Json {
  return isObject(value) && typeof value['id'] === 'string' && typeof value['type'] === 'string' && 'payload' in value
}

/** The value of JSON text, or undefined if it is not usable JSON. */
function parseText (text: string): unknown {
  const parsed = parseUntrustedJson(Buffer.from(text))
  return parsed.ok ? parsed.value : undefined
}

function issuesOf (value: unknown): ValidationIssue[] {
  if (!Array.isArray(value)) return []
  return value.filter(isObject).map((i) => ({ path: stringOr(i['path'], ''), message: stringOr(i['message'], ''), keyword: stringOr(i['keyword'], '') }))
}

export function deadLetterView (message: WaitingMessage): DeadLetterView {
  const topicType = message.topic.slice(message.topic.lastIndexOf('/') + 1)
  const parsed = parseUntrustedJson(message.payload)
  const base = { id: String(message.seq), topic: message.topic, deadAt: new Date(message.enqueuedAt).toISOString() }
  if (!parsed.ok || !isObject(parsed.value)) {
    return {
      ...base, taskType: topicType, reason: 'unreadable', error: null, attempts: null,
      issues: parsed.ok ? [{ path: '', message: 'must be a JSON object', keyword: 'type' }] : [parsed.issue],
      task: null, payload: null, record: parsed.ok ? parsed.value : null
    }
  }
  const record = parsed.value
  const common = {
    ...base,
    taskType: stringOr(record['taskType'], topicType),
    reason: stringOr(record['reason'], 'unknown'),
    issues: issuesOf(record['issues']),
    deadAt: stringOr(record['at'], base.deadAt),
    record
  }
  if ('envelope' in record) {
    // A worker's (protocol/messages.ts DeadLetter): the envelope as received, parsed or as text.
    const envelope = typeof record['envelope'] === 'string' ? parseText(record['envelope']) ?? record['envelope'] : record['envelope']
    return {
      ...common,
      error: stringOr(record['error'], null),
      attempts: typeof record['attempts'] === 'number' ? record['attempts'] : null,
      task: isEnvelope(envelope) ? envelope : null,
      payload: null
    }
  }
  // The task gate's (protocol/messages.ts GateDeadLetter): the original submission as text.
  const payload = stringOr(record['payload'], null)
  const submitted = payload === null ? undefined : parseText(payload)
  return { ...common, error: null, attempts: null, task: isEnvelope(submitted) ? submitted : null, payload }
}

/** The task of a dead letter, as a new submission: its type, payload, attempts and timeout. */
function recover (view: DeadLetterView): Recovered {
  const record = view.record
  if (!isObject(record)) return { skip: 'the dead letter is not a readable record' }
  if (view.reason === 'delay-invalid') return { skip: 'a refused delayed publish, not a task' }
  let type: unknown = view.taskType
  let payload: unknown
  let source: Json | null = null
  if ('envelope' in record) {
    if (!isObject(view.task)) return { skip: 'the dead letter holds no task envelope' }
    source = view.task
    type = source['type']
    payload = source['payload']
  } else {
    if (view.payload === null) return { skip: 'the original submission was not kept as text' }
    if (record['truncated'] === true) return { skip: 'the original submission was cut when it was stored' }
    const submitted = parseText(view.payload)
    if (submitted === undefined) return { skip: 'the original submission is not JSON' }
    // A full envelope gives its payload; anything else was a bare payload.
    if (isEnvelope(submitted)) {
      source = submitted
      payload = submitted['payload']
    } else {
      payload = submitted
    }
  }
  if (!isTaskTypeName(type)) return { skip: `no task type to submit to (${JSON.stringify(type)})` }
  const options: SubmitOptions = {}
  for (const key of ['maxAttempts', 'timeoutMs'] as const) {
    const value = source?.[key]
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) options[key] = value
  }
  return { type, payload, options }
}
