import type mqemitter from 'mqemitter'

/*
 * Patch of mqemitter 7 internals (its regression test: "QoS 0 flood" in
 * test/hostile-input.test.ts): with a `concurrency` limit, an emit beyond it
 * waits in `_messageQueue`; when a running emit finishes, mqemitter's
 * `released` takes the next one and calls `_do` for it, synchronously.
 */
type MQEmitter = mqemitter.MQEmitter

interface EmitterInternals {
  current: number
  _doing: boolean
  _messageQueue: unknown[]
  _messageCallbacks: unknown[]
  _do: (message: unknown, callback: unknown) => unknown
}

/** Queued emits run in one synchronous chain at most this long; the rest continue on the next turn. */
const MAX_CHAIN = 64

/**
 * Fix for a crash of the broker (`RangeError: Maximum call stack size
 * exceeded` in mqemitter): a fast QoS 0 publisher fills mqemitter's queue
 * while a subscriber's socket is full (Aedes holds each delivery until the
 * socket drains); when that subscriber disconnects, its pending writes all
 * finish and its listener goes, so each queued emit now matches no one and
 * completes synchronously, and `released` → `_do` → `released` recurses once
 * per queued message: thousands deep.
 *
 * `_do` now counts how deep it is nested; past {@link MAX_CHAIN} the message
 * goes back to the head of the queue, its concurrency slot held, and the
 * queue resumes on the next turn. Emits keep their order (EmitOrder numbers
 * them at emit, and a client drops a number lower than one it has seen).
 */
export function boundEmitRecursion (mq: MQEmitter): MQEmitter {
  const internals = mq as unknown as EmitterInternals
  const run = internals._do
  if (typeof run !== 'function' || typeof internals.current !== 'number' ||
    !Array.isArray(internals._messageQueue) || !Array.isArray(internals._messageCallbacks)) {
    throw new Error('mqemitter internals moved: _do, current and the message queues are needed (broker/mqtt/internals/emit-recursion.ts)')
  }
  let depth = 0
  const runCounted = (message: unknown, callback: unknown): unknown => {
    depth++
    try {
      return run.call(mq, message, callback)
    } finally {
      depth--
    }
  }
  const resume = (): void => {
    internals.current--
    if (internals._messageQueue.length === 0) {
      internals._doing = false // as mqemitter's `released` does with nothing queued
      return
    }
    runCounted(internals._messageQueue.shift(), internals._messageCallbacks.shift())
  }
  internals._do = (message, callback) => {
    if (depth < MAX_CHAIN) return runCounted(message, callback)
    internals._messageQueue.unshift(message)
    internals._messageCallbacks.unshift(callback)
    internals.current++
    setImmediate(resume)
    return mq
  }
  return mq
}
