import { randomUUID } from 'node:crypto'
import { ErrorCodes, FleetqClientError, ScheduleError, type ScheduleErrorCode } from '../protocol/errors.js'
import { PendingReplies, type Reply } from '../protocol/request-reply.js'
import type { ScheduleInfo, ScheduleInput, ScheduleRequest } from '../protocol/schedules.js'
import { replyFilter, SCHEDULE_REQUEST_TOPIC } from '../protocol/topics.js'
import type { Message } from './message.js'

export interface SchedulesHost {
  readonly clientId: string
  publishJson (topic: string, value: unknown, options: { qos: 1 }): Promise<void>
  /** Sends SUBSCRIBE only: replies reach {@link Schedules.onReply} through a route the client installed. */
  subscribeRoute (filter: string): Promise<void>
}

/** How long a schedule request waits for the broker's reply. */
export const SCHEDULE_REQUEST_TIMEOUT_MS = 10_000

type RequestBody = ScheduleRequest extends infer R ? R extends ScheduleRequest ? Omit<R, 'id'> : never : never

/**
 * Periodic schedules kept by the broker (`client.schedules`): requests go to
 * `$fleetq/schedules/request`, replies come back on
 * `$fleetq/replies/{clientId}/{requestId}` (protocol/request-reply.ts). A
 * schedule the broker refuses rejects with the broker's ScheduleError code
 * (FLEETQ_CRON_INVALID, FLEETQ_TIMEZONE_INVALID, FLEETQ_SCHEDULE_INVALID with
 * `issues`, FLEETQ_SCHEDULE_NOT_FOUND).
 */
export class Schedules {
  readonly #host: SchedulesHost
  readonly #replies: PendingReplies<unknown>
  #closed = false

  constructor (host: SchedulesHost) {
    this.#host = host
    this.#replies = new PendingReplies(() => host.subscribeRoute(this.replyFilter))
  }

  get replyFilter (): string {
    return replyFilter(this.#host.clientId)
  }

  /** Creates or replaces the schedule named `schedule.name`; resolves with it, `nextRunAt` included. */
  upsert (schedule: ScheduleInput): Promise<ScheduleInfo> {
    return this.#request({ op: 'upsert', schedule }) as Promise<ScheduleInfo>
  }

  list (): Promise<ScheduleInfo[]> {
    return this.#request({ op: 'list' }) as Promise<ScheduleInfo[]>
  }

  get (name: string): Promise<ScheduleInfo> {
    return this.#request({ op: 'get', name }) as Promise<ScheduleInfo>
  }

  async remove (name: string): Promise<void> {
    await this.#request({ op: 'remove', name })
  }

  /** @internal a message on the reply filter */
  onReply (message: Message): void {
    let reply: Reply
    try {
      reply = message.json<Reply>()
    } catch {
      return
    }
    if (reply === null || typeof reply !== 'object' || typeof reply.id !== 'string') return
    if (reply.ok) {
      this.#replies.resolve(reply.id, reply.result)
    } else {
      this.#replies.reject(reply.id, new ScheduleError(reply.error.code as ScheduleErrorCode, reply.error.message, { issues: reply.error.issues ?? [] }))
    }
  }

  close (): void {
    this.#closed = true
    this.#replies.rejectAll(new FleetqClientError(ErrorCodes.CLIENT_CLOSED, 'the client is closed'))
  }

  async #request (body: RequestBody): Promise<unknown> {
    if (this.#closed) throw new FleetqClientError(ErrorCodes.CLIENT_CLOSED, 'the client is closed')
    await this.#replies.subscribed()
    const id = randomUUID()
    const reply = this.#replies.wait(id, {
      ms: SCHEDULE_REQUEST_TIMEOUT_MS,
      error: () => new FleetqClientError(ErrorCodes.REQUEST_TIMEOUT, `no reply to the schedules ${body.op} request within ${SCHEDULE_REQUEST_TIMEOUT_MS} ms: is the broker fleetq?`)
    })
    try {
      await this.#host.publishJson(SCHEDULE_REQUEST_TOPIC, { id, ...body }, { qos: 1 })
    } catch (err) {
      this.#replies.reject(id, err as Error)
      reply.catch(() => undefined)
      throw err
    }
    return reply
  }
}
