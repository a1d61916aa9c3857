import { randomUUID } from 'node:crypto'
import { ScheduleError, type ErrorCodes } from '../broker/errors.js'
import { REPLIES_PREFIX, SCHEDULE_REQUEST_TOPIC, type ScheduleReply } from '../broker/scheduler/schedule-api.js'
import type { ScheduleInfo, ScheduleInput } from '../broker/scheduler/schedule.js'
import { ClientErrorCodes, FleetqClientError } from './errors.js'
import type { Message } from './message.js'

export interface SchedulesHost {
  readonly clientId: string
  publishJson (topic: string, value: unknown, options: { qos: 1 }): Promise<void>
  /** Sends SUBSCRIBE only: replies reach {@link Schedules.onReply} through a route the client installed. */
  subscribeRoute (filter: string): Promise<void>
}

interface Waiting {
  resolve (value: unknown): void
  reject (err: Error): void
  timer: NodeJS.Timeout
}

/** How long a schedule request waits for the broker's reply. */
export const SCHEDULE_REQUEST_TIMEOUT_MS = 10_000

/**
 * Periodic schedules kept by the broker (`client.schedules`): requests go to
 * `$fleetq/schedules/request`, replies come back on
 * `$fleetq/replies/{clientId}/{requestId}`. A schedule the broker refuses
 * rejects with the broker's ScheduleError code (FLEETQ_CRON_INVALID,
 * FLEETQ_TIMEZONE_INVALID, FLEETQ_SCHEDULE_INVALID with `issues`,
 * FLEETQ_SCHEDULE_NOT_FOUND).
 */
export class Schedules {
  readonly #host: SchedulesHost
  readonly #waiting = new Map<string, Waiting>()
  #subscribed: Promise<void> | null = null
  #closed = false

  constructor (host: SchedulesHost) {
    this.#host = host
  }

  get replyFilter (): string {
    return `${REPLIES_PREFIX}${this.#host.clientId}/+`
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
    let reply: ScheduleReply
    try {
      reply = message.json<ScheduleReply>()
    } catch {
      return
    }
    const waiting = this.#waiting.get(reply.id)
    if (waiting === undefined) return // a reply to an earlier process with this client id
    this.#waiting.delete(reply.id)
    clearTimeout(waiting.timer)
    if (reply.ok) {
      waiting.resolve(reply.result)
    } else {
      waiting.reject(new ScheduleError(reply.error.code as typeof ErrorCodes.SCHEDULE_INVALID, reply.error.message,
        { issues: (reply.error.issues ?? []) as Array<{ path: string, message: string }> }))
    }
  }

  close (): void {
    this.#closed = true
    for (const [id, waiting] of this.#waiting) {
      clearTimeout(waiting.timer)
      waiting.reject(new FleetqClientError(ClientErrorCodes.CLIENT_CLOSED, 'the client is closed'))
      this.#waiting.delete(id)
    }
  }

  async #request (body: Record<string, unknown>): Promise<unknown> {
    if (this.#closed) throw new FleetqClientError(ClientErrorCodes.CLIENT_CLOSED, 'the client is closed')
    this.#subscribed ??= this.#host.subscribeRoute(this.replyFilter).catch((err: unknown) => {
      this.#subscribed = null
      throw err
    })
    await this.#subscribed
    const id = randomUUID()
    const reply = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id)
        reject(new FleetqClientError(ClientErrorCodes.REQUEST_TIMEOUT, `no reply to the schedules ${String(body['op'])} request within ${SCHEDULE_REQUEST_TIMEOUT_MS} ms: is the broker fleetq?`))
      }, SCHEDULE_REQUEST_TIMEOUT_MS)
      this.#waiting.set(id, { resolve, reject, timer })
    })
    try {
      await this.#host.publishJson(SCHEDULE_REQUEST_TOPIC, { id, ...body }, { qos: 1 })
    } catch (err) {
      const waiting = this.#waiting.get(id)
      if (waiting !== undefined) clearTimeout(waiting.timer)
      this.#waiting.delete(id)
      reply.catch(() => undefined)
      throw err
    }
    return reply
  }
}
