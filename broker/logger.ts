import { pino, type Logger } from 'pino'
import type { LogLevel } from './options.js'

/** Structured JSON logs on stderr (stdout stays free for tools that pipe it). */
export function createLogger (level: LogLevel): Logger {
  return pino({ name: 'fleetq', level }, pino.destination(2))
}
