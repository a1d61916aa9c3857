import { createRequire } from 'node:module'
import { pino, type Logger } from 'pino'
import type PinoPretty from 'pino-pretty'
import type { BrokerConfig } from './generated/config-types.js'
import type { LogLevel } from './options.js'

/** `logFormat` (docs/configuration.md): `json`, `pretty`, or `auto` (pretty when stderr is a terminal). */
export type LogFormat = NonNullable<BrokerConfig['logFormat']>

/**
 * The broker's logs on stderr (stdout stays free for tools that pipe it):
 * one JSON object per line, or pino-pretty's lines for people. Both write
 * synchronously (pino-pretty as a stream in this thread, not a worker
 * transport): the last lines before an exit (shutdown, a fatal error) come
 * out, in order. `destination` is for tests and embedders; stderr otherwise.
 *
 * Log lines about a connection carry `clientId` and `conn` as fields, not
 * through child loggers: the admin API sets `logger.level` on this root
 * logger at run time, which children would not follow (docs/operations.md#logs).
 */
export function createLogger (level: LogLevel, format: LogFormat = 'auto', destination?: NodeJS.WritableStream): Logger {
  const tty = destination === undefined ? process.stderr.isTTY : (destination as { isTTY?: boolean }).isTTY === true
  const usePretty = format === 'pretty' || (format === 'auto' && tty)
  if (!usePretty) return pino({ name: 'fleetq', level }, destination ?? pino.destination({ dest: 2, sync: true }))
  // pino-pretty, and what it loads, only for pretty logs: about 3 MB of RSS a
  // broker logging JSON need not hold (docs/benchmarks.md, "The broker's RSS").
  // require, not import(): createLogger stays synchronous.
  const pretty = createRequire(import.meta.url)('pino-pretty') as typeof PinoPretty
  const stream = pretty({
    destination: destination ?? 2,
    sync: true,
    colorize: tty,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname'
  })
  return pino({ name: 'fleetq', level }, stream)
}
