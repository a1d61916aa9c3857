import { createRequire, syncBuiltinESMExports } from 'node:module'
import { finished, Transform, type Readable } from 'node:stream'
import { promisify } from 'node:util'

/*
 * Patch of Aedes 1.2 internals (tripwire: "queue pipe" in test/connect-path.test.ts). The last
 * step of every CONNECT, lib/handlers/connect.js `emptyQueue`, runs
 *
 *   pipeline(persistence.outgoingStream(client), through(function clearQueue (data, enc, next) {...}), done)
 *
 * with `pipeline` imported from 'stream' (lib/utils.js `through` makes an
 * object-mode Transform of the function). Node 20's `pipeline` makes an
 * AbortController per call and aborts it when the streams are done, which
 * builds a DOMException with its stack trace and dispatches an 'abort'
 * event: with the rest of its bookkeeping about 60–90 µs of the broker's CPU
 * per connect, a fifth of it (docs/benchmarks.md "Idle connections"), for a
 * queue that is empty for every clean session.
 *
 * Aedes's ES module reads `pipeline` through the live binding of Node's
 * 'stream' module, so the export is replaced (and `syncBuiltinESMExports()`
 * carries it to ES modules) by a function that hands exactly that call, a
 * Transform whose transform function is Aedes's `clearQueue`, to
 * {@link pipeQueue}, and every other call to Node's own, unchanged.
 */

type Callback = (err?: Error | null) => void
type Pipeline = (...args: unknown[]) => unknown

const stream = createRequire(import.meta.url)('node:stream') as { pipeline: Pipeline }

let installed = false
let piped = 0

/**
 * What `pipeline(source, sink, callback)` does for two streams, without the
 * AbortController: the source piped into the sink, both destroyed on the
 * first error, `callback` called once on the next tick, with that error or
 * none once the source has ended and the sink finished. As in `pipeline`, a
 * stream that closes before it is done is an error
 * (ERR_STREAM_PREMATURE_CLOSE), and the sink's readable side is not waited
 * for (nothing reads it: `clearQueue` writes to the client and pushes nothing).
 */
export function pipeQueue (source: Readable, sink: Transform, callback: Callback): Transform {
  piped++
  let done = false
  const finish = (err?: Error | null): void => {
    if (done) return
    done = true
    if (err) {
      source.destroy()
      sink.destroy()
    }
    process.nextTick(callback, err ?? undefined)
  }
  finished(source, { writable: false }, (err) => { if (err) finish(err) })
  finished(sink, { readable: false }, finish)
  source.pipe(sink)
  return sink
}

function isReadable (value: unknown): value is Readable {
  return typeof (value as { pipe?: unknown } | null)?.pipe === 'function' && typeof (value as { on?: unknown }).on === 'function'
}

/** Aedes's emptyQueue call: (outgoing stream, the `clearQueue` Transform, callback). */
function isEmptyQueueCall (args: unknown[]): args is [Readable, Transform, Callback] {
  if (args.length !== 3 || typeof args[2] !== 'function' || !(args[1] instanceof Transform) || !isReadable(args[0])) return false
  return (args[1] as Transform & { _transform?: { name?: unknown } })._transform?.name === 'clearQueue'
}

/**
 * Once per process, before the first CONNECT is handled (called for every
 * connection by lean-client.ts; only the first call does anything).
 */
export function leanQueuePipe (): void {
  if (installed) return
  const original = stream.pipeline
  if (typeof original !== 'function') throw new Error("Aedes internals moved: 'stream'.pipeline is needed (broker/mqtt/internals/queue-pipe.ts)")
  const pipeline = function pipeline (this: unknown, ...args: unknown[]): unknown {
    if (isEmptyQueueCall(args)) return pipeQueue(args[0], args[1], args[2])
    return Reflect.apply(original, this, args)
  }
  // util.promisify(pipeline) still gives stream/promises' pipeline (Node defines it as a getter).
  const custom = Object.getOwnPropertyDescriptor(original, promisify.custom)
  if (custom !== undefined) Object.defineProperty(pipeline, promisify.custom, custom)
  stream.pipeline = pipeline
  syncBuiltinESMExports()
  installed = true
}

/** Aedes emptyQueue calls that went through {@link pipeQueue} since start (for the tripwire). */
export function queuePipes (): number {
  return piped
}
