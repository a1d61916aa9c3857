/*
 * The live feed: GET /api/events (server-sent events, docs/operations.md).
 * EventSource cannot send an Authorization header, so the stream is read with
 * fetch() and parsed here by the text/event-stream rules of the HTML
 * standard (§9.2.6): events end at a blank line, `event:` names one, `data:`
 * lines are joined with newlines, lines starting with `:` are comments (the
 * server's pings). A dropped stream is opened again with a growing delay.
 */
import { authHeaders } from './api.js'

const BACKOFF_FIRST_MS = 500
const BACKOFF_MAX_MS = 10_000
/** Snapshots come every second and pings keep it open: this much silence means a dead connection. */
const SILENCE_MS = 20_000

/** Splits a text/event-stream into events; feed it chunks of text. */
export function createEventParser (onEvent) {
  let buffer = ''
  let name = ''
  let data = []
  const line = (text) => {
    if (text === '') {
      if (data.length > 0) onEvent(name || 'message', data.join('\n'))
      name = ''
      data = []
      return
    }
    if (text.startsWith(':')) return
    const colon = text.indexOf(':')
    const field = colon === -1 ? text : text.slice(0, colon)
    let value = colon === -1 ? '' : text.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') name = value
    else if (field === 'data') data.push(value)
  }
  return (chunk) => {
    buffer += chunk
    let end
    while ((end = buffer.search(/\r\n|\r|\n/)) !== -1) {
      const breakLength = buffer.startsWith('\r\n', end) ? 2 : 1
      // A lone \r at the end of a chunk may be the first half of \r\n: wait for more.
      if (buffer[end] === '\r' && breakLength === 1 && end === buffer.length - 1) break
      line(buffer.slice(0, end))
      buffer = buffer.slice(end + breakLength)
    }
  }
}

/**
 * Opens the feed and keeps it open until `stop()`. Calls `onSnapshot(data)`
 * for every snapshot, `onState('connecting'|'live'|'retrying', detail)` as the
 * connection changes, and `onUnauthenticated()` on 401 (it then stops).
 */
export function openSnapshotStream ({ onSnapshot, onState, onUnauthenticated }) {
  let stopped = false
  let controller = null
  let retryTimer = null
  let delay = BACKOFF_FIRST_MS

  const retry = (reason) => {
    if (stopped) return
    onState('retrying', `${reason}; retrying in ${Math.round(delay / 100) / 10} s`)
    retryTimer = setTimeout(connect, delay)
    delay = Math.min(delay * 2, BACKOFF_MAX_MS)
  }

  async function connect () {
    if (stopped) return
    controller = new AbortController()
    let watchdog = null
    const feed = () => {
      clearTimeout(watchdog)
      watchdog = setTimeout(() => controller.abort(new Error('no data')), SILENCE_MS)
    }
    onState('connecting', 'connecting')
    try {
      feed()
      const response = await fetch('/api/events', { headers: authHeaders(), signal: controller.signal, cache: 'no-store' })
      if (response.status === 401) {
        stopped = true
        onUnauthenticated()
        return
      }
      if (!response.ok || response.body === null) throw new Error(`HTTP ${response.status}`)
      const parse = createEventParser((name, data) => {
        if (name !== 'snapshot') return
        delay = BACKOFF_FIRST_MS
        onState('live', 'live')
        onSnapshot(JSON.parse(data))
      })
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        feed()
        parse(value)
      }
      retry('stream ended')
    } catch (err) {
      retry(stopped ? 'stopped' : `stream lost (${err?.message ?? err})`)
    } finally {
      clearTimeout(watchdog)
    }
  }

  connect()
  return {
    stop () {
      stopped = true
      clearTimeout(retryTimer)
      controller?.abort()
    }
  }
}
