import { RESULTS_PREFIX } from '../../protocol/topics.js'
import { parseUntrustedJson } from '../untrusted-json.js'

/** What happened to tasks, as the broker sees it (`fleetq_tasks_total{type,outcome}`, docs/operations.md#metrics). */
export const TASK_OUTCOMES = ['submitted', 'retried', 'invalid', 'duplicate', 'completed', 'failed', 'dead-lettered'] as const
export type TaskOutcome = typeof TASK_OUTCOMES[number]

/** Counts by outcome, in the order of {@link TASK_OUTCOMES}. */
export type OutcomeCounts = Record<TaskOutcome, number>

/** The `type` label of task types with no schema (allowed unknown types, `$delayed` dead letters): label values stay bounded. */
export const OTHER_TYPE = 'other'

/** Result messages are looked for this far into the payload before it is parsed (the task runner writes `status` second). */
const HEAD_BYTES = 256
/** A result message whose head does not say is parsed only up to this size. */
const MAX_PARSED_BYTES = 64 * 1024
const COMPLETED = Buffer.from('"status":"completed"')
const FAILED = Buffer.from('"status":"failed"')
const PROGRESS = Buffer.from('"status":"progress"')

export interface TaskOutcomesOptions {
  /** The task types with schemas: each gets its own label value, any other type counts as {@link OTHER_TYPE}. */
  types: Iterable<string>
  /** Where dead letters are published (`tasks.deadLetterPrefix`). */
  deadLetterPrefix: string
  /** Most tasks remembered between submission and result (oldest forgotten first; their result counts as {@link OTHER_TYPE}). @defaultValue 100000 */
  maxTracked?: number
}

/**
 * Task outcomes by type. Submissions are counted by the task gate as it
 * decides; completions, failures and dead letters from the messages that
 * report them, in the `published` hook (cheap for every other message: one
 * character compare, then a prefix check):
 * - a dead letter: a publish to `{deadLetterPrefix}{type}`, from the gate
 *   (an invalid submission) or from a worker (the last attempt failed);
 * - a result: a publish to `$fleetq/results/{producer}/{taskId}` whose
 *   `status` is `completed` or `failed` (protocol/messages.ts). Workers reply
 *   only to tasks that have a `replyTo`, and a result does not name its type,
 *   so the gate remembers the type of each accepted task with a `replyTo`
 *   until its result comes (bounded by `maxTracked`). A task without a
 *   `replyTo` is never counted as completed or failed.
 */
export class TaskOutcomes {
  readonly #counts = new Map<string, OutcomeCounts>()
  readonly #other: OutcomeCounts = zero()
  readonly #deadLetterPrefix: string
  readonly #maxTracked: number
  /** The type of each accepted task waiting for its result, by task id (insertion order: oldest first). */
  readonly #awaiting = new Map<string, string>()

  constructor (options: TaskOutcomesOptions) {
    for (const type of options.types) this.#counts.set(type, zero())
    this.#deadLetterPrefix = options.deadLetterPrefix
    this.#maxTracked = options.maxTracked ?? 100_000
  }

  count (type: string, outcome: TaskOutcome): void {
    (this.#counts.get(type) ?? this.#other)[outcome]++
  }

  /** An accepted task whose worker will publish a result: remembered until then. */
  awaitResult (taskId: string, type: string): void {
    if (!this.#counts.has(type)) return // counted as other either way
    this.#awaiting.set(taskId, type)
    if (this.#awaiting.size > this.#maxTracked) {
      const oldest = this.#awaiting.keys().next().value
      if (oldest !== undefined) this.#awaiting.delete(oldest)
    }
  }

  /** Every PUBLISH, once stored (the `published` hook): counts it if it reports an outcome. */
  published (topic: string, payload: Buffer | string): void {
    // Both prefixes start with `$`: most messages stop here.
    if (topic.charCodeAt(0) !== 36) return
    if (topic.startsWith(this.#deadLetterPrefix)) {
      this.count(topic.slice(this.#deadLetterPrefix.length), 'dead-lettered')
    } else if (topic.startsWith(RESULTS_PREFIX)) {
      const status = resultStatus(typeof payload === 'string' ? Buffer.from(payload) : payload)
      if (status === null) return
      const taskId = topic.slice(topic.lastIndexOf('/') + 1)
      const type = this.#awaiting.get(taskId)
      if (type !== undefined) this.#awaiting.delete(taskId)
      this.count(type ?? OTHER_TYPE, status)
    }
  }

  /** Counts by type (known types, then {@link OTHER_TYPE}); a copy. */
  stats (): Record<string, OutcomeCounts> {
    const byType: Record<string, OutcomeCounts> = {}
    for (const [type, counts] of this.#counts) byType[type] = { ...counts }
    byType[OTHER_TYPE] = { ...this.#other }
    return byType
  }

  /** Tasks remembered until their result. */
  get awaiting (): number {
    return this.#awaiting.size
  }
}

function zero (): OutcomeCounts {
  return { submitted: 0, retried: 0, invalid: 0, duplicate: 0, completed: 0, failed: 0, 'dead-lettered': 0 }
}

/** `completed` or `failed` for a final result message, null for progress or anything else. */
function resultStatus (payload: Buffer): 'completed' | 'failed' | null {
  const head = payload.length > HEAD_BYTES ? payload.subarray(0, HEAD_BYTES) : payload
  if (head.includes(COMPLETED)) return 'completed'
  if (head.includes(FAILED)) return 'failed'
  if (head.includes(PROGRESS) || payload.length > MAX_PARSED_BYTES) return null
  // Another writer may space or order its keys otherwise.
  const parsed = parseUntrustedJson(payload)
  const status = parsed.ok ? (parsed.value as { status?: unknown } | null)?.status : undefined
  return status === 'completed' || status === 'failed' ? status : null
}
