import { requireFromMqttPacket } from './mqtt-packet-require.js'

/*
 * Patch of mqtt-packet 9's logging (tripwire: "quiet debug" in
 * test/quiet-debug.test.ts). parser.js and writeToStream.js log every step of
 * every packet through the `debug` package, about forty calls per QoS 1
 * message between the PUBLISH, its PUBACK and the copy sent on. A `debug`
 * logger is `function debug (...args)`, which checks whether it is enabled
 * only after its rest parameter has collected the arguments into a new array:
 * 2.7 KB of garbage per QoS 1 message, the largest single source in the
 * broker's allocation profile (docs/benchmarks.md, "The broker's
 * RSS"), and the garbage is what the young-generation GC pauses are
 * made of.
 *
 * `debug` is CommonJS, and mqtt-packet makes its loggers at load time with
 * `require('debug')(namespace)`. Installed before mqtt-packet is loaded, the
 * factory in require's cache is replaced by one that wraps each
 * `mqtt-packet:*` logger in a function of fixed arity, which checks
 * `enabled` first and forwards only then. `enabled` is the logger's own
 * getter, so `DEBUG=mqtt-packet:*` and a later `debug.enable()` still work.
 * Loggers of every other namespace are the factory's own, unchanged.
 */

type Logger = ((...args: unknown[]) => void) & { readonly enabled: boolean }
type Factory = (namespace: string) => Logger

const QUIETED_PREFIX = 'mqtt-packet:'

let installed = false
let quieted = 0

/** A logger that allocates nothing while `inner` is disabled. mqtt-packet passes at most four arguments. */
function quietLogger (inner: Logger): Logger {
  const logger = function quietDebug (a: unknown, b?: unknown, c?: unknown, d?: unknown): void {
    if (!inner.enabled) return
    if (d !== undefined) inner(a, b, c, d)
    else if (c !== undefined) inner(a, b, c)
    else if (b !== undefined) inner(a, b)
    else inner(a)
  }
  Object.defineProperty(logger, 'enabled', { get: () => inner.enabled })
  return logger as Logger
}

/**
 * Wraps the `debug` factory that mqtt-packet resolves, once per process.
 * Returns false when mqtt-packet's parser was loaded before (its loggers are
 * made already and stay as they are): nothing is changed then.
 */
export function installQuietDebug (): boolean {
  if (installed) return true
  const cache = requireFromMqttPacket.cache
  if (cache[requireFromMqttPacket.resolve('./parser')] !== undefined) return false
  const debugPath = requireFromMqttPacket.resolve('debug')
  const factory = requireFromMqttPacket('debug') as Factory
  const cached = cache[debugPath]
  if (cached === undefined) throw new Error("mqtt-packet internals moved: 'debug' is not in require's cache (broker/mqtt/internals/quiet-debug.ts)")
  cached.exports = new Proxy(factory, {
    apply (target, self, args: [string]) {
      const logger = Reflect.apply(target, self, args) as Logger
      if (typeof args[0] !== 'string' || !args[0].startsWith(QUIETED_PREFIX)) return logger
      quieted++
      return quietLogger(logger)
    }
  })
  installed = true
  return true
}

/** For the tripwire: whether the factory is wrapped, and how many mqtt-packet loggers it has made quiet. */
export function quietDebugState (): { installed: boolean, quieted: number } {
  return { installed, quieted }
}

installQuietDebug()
