import { pino, type Logger } from 'pino'
import type { LogLevel } from './options.js'

/**
 * Structured JSON logs on stderr (stdout stays free for tools that pipe it).
 * Synchronous writes: the last lines before an exit (shutdown, a fatal error)
 * come out, in order.
 */
export function createLogger (level: LogLevel): Logger {
  return pino({ name: 'fleetq', level }, pino.destination({ dest: 2, sync: true }))
}
