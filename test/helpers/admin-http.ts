import type { Broker } from '../../broker/index.js'

/*
 * Calls of the broker's HTTP listener (docs/operations.md) with Node's
 * fetch, as the dashboard and `fleetq` admin commands make them.
 */

/** `http://127.0.0.1:{port}` of the broker's HTTP listener. */
export function httpBase (broker: Broker): string {
  const endpoint = broker.endpoints.find((e) => e.kind === 'http')
  if (endpoint === undefined) throw new Error('the broker has no http listener')
  return `http://127.0.0.1:${endpoint.port}`
}

export function basic (user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` }
}

/**
 * A JSON answer as a test reads it: its shape is what the test asserts, so
 * it is not declared first.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any

export interface Answer {
  status: number
  headers: Headers
  /** The body parsed as JSON when it is JSON (problem+json included), else its text. */
  body: Json
}

/**
 * One request: a `json` body is sent with `Content-Type: application/json`
 * (what every non-GET request needs); `headers` adds to or overrides that.
 */
export async function call (base: string, method: string, path: string, options: { json?: unknown, headers?: Record<string, string>, body?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {}
  let body = options.body
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.json)
  } else if (method !== 'GET' && method !== 'HEAD' && body === undefined) {
    headers['content-type'] = 'application/json'
  }
  const res = await fetch(`${base}${path}`, { method, headers: { ...headers, ...options.headers }, body })
  const text = await res.text()
  const type = res.headers.get('content-type') ?? ''
  return { status: res.status, headers: res.headers, body: /json/.test(type) && text !== '' ? JSON.parse(text) : text }
}

/** Reads server-sent events from a fetch response body: each `event:`/`data:` block, and the comments. */
export class EventReader {
  readonly events: Array<{ event: string, data: Json }> = []
  readonly comments: string[] = []
  readonly response: Promise<Response>
  readonly done: Promise<void>
  readonly #controller = new AbortController()

  constructor (url: string, headers: Record<string, string> = {}) {
    this.response = fetch(url, { headers, signal: this.#controller.signal })
    this.done = this.#read()
  }

  async #read (): Promise<void> {
    try {
      const res = await this.response
      if (res.body === null) return
      const decoder = new TextDecoder()
      let buffer = ''
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          this.#take(buffer.slice(0, end))
          buffer = buffer.slice(end + 2)
        }
      }
    } catch {
      // aborted by close(), or the server went away
    }
  }

  #take (block: string): void {
    let event = 'message'
    const data: string[] = []
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.comments.push(line.slice(1).trim())
      else if (line.startsWith('event:')) event = line.slice(6).trim()
      else if (line.startsWith('data:')) data.push(line.slice(5).trimStart())
    }
    if (data.length > 0) this.events.push({ event, data: JSON.parse(data.join('\n')) })
  }

  /** Stops reading (the server sees the client go away). */
  async close (): Promise<void> {
    this.#controller.abort()
    await this.done
  }
}
