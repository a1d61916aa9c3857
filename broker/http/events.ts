import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { AdminApi, DeadLetterView, GroupView, ScheduleView, StatusView } from '../admin/admin-api.js'

/** The data of each `snapshot` event of GET /api/events (docs/operations.md). */
export interface Snapshot {
  status: StatusView
  groups: GroupView[]
  schedules: ScheduleView[]
  /** The newest {@link SNAPSHOT_DEAD_LETTERS}, oldest first. */
  deadLetters: DeadLetterView[]
}

export const SNAPSHOT_DEAD_LETTERS = 50

/**
 * A comment line now and then: proxies and load balancers close a
 * connection that carries nothing for a minute or so, and a long interval
 * would otherwise leave it silent (HTML Living Standard §9.2.6: lines
 * starting with `:` are ignored by readers).
 */
const PING_MS = 15_000

/** Everything the broker shows at one moment: what the dashboard redraws from. */
export function takeSnapshot (admin: AdminApi): Snapshot {
  const status = admin.status()
  const deadLetters = admin.deadLetters(undefined, SNAPSHOT_DEAD_LETTERS, { newest: true })
  return { status, groups: admin.groups(), schedules: admin.schedules(), deadLetters }
}

/**
 * The open server-sent event streams (text/event-stream): each gets a
 * snapshot at once and every `intervalMs`. A stream's timers stop when its
 * client goes away, and {@link endAll} ends every stream when the broker
 * closes, so no open response holds the shutdown up.
 */
export class EventStreams {
  readonly #open = new Set<() => void>()
  readonly #logger: Logger
  #ended = false

  constructor (logger: Logger) {
    this.#logger = logger
  }

  get size (): number {
    return this.#open.size
  }

  /** Answers `req` with a stream of `snapshot()` every `intervalMs`. */
  open (req: IncomingMessage, res: ServerResponse, intervalMs: number, snapshot: () => Snapshot): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      // nginx buffers responses unless told otherwise; events must go out as they are written.
      'x-accel-buffering': 'no'
    })
    if (this.#ended || req.method === 'HEAD') {
      res.end()
      return
    }
    const send = (): void => {
      let data: string
      try {
        data = JSON.stringify(snapshot())
      } catch (err) {
        this.#logger.error({ err }, 'event stream snapshot failed; stream ended')
        stop()
        return
      }
      res.write(`event: snapshot\ndata: ${data}\n\n`)
    }
    const every = setInterval(send, intervalMs)
    const ping = setInterval(() => res.write(': ping\n\n'), PING_MS)
    const stop = (): void => {
      if (!this.#open.delete(stop)) return
      clearInterval(every)
      clearInterval(ping)
      res.end()
    }
    this.#open.add(stop)
    res.on('close', stop)
    // The client waits for nothing but the first event.
    send()
  }

  /** Ends every open stream, and any opened later at once. */
  endAll (): void {
    this.#ended = true
    for (const stop of [...this.#open]) stop()
  }
}
