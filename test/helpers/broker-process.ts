import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import type { BrokerOptions } from '../../broker/index.js'
import { spawnNodeChild, type NodeChild } from './child-process.js'

const childScript = new URL('./broker-child.ts', import.meta.url)
/** The stable code of a port taken by another process (docs/errors.md). */
const PORT_IN_USE = 'FLEETQ_PORT_IN_USE'

/**
 * Broker options that cross to the child as JSON: no functions, so no
 * `clock` (children run on the system clock) and no `logger`.
 */
export type ChildBrokerOptions = Omit<BrokerOptions, 'clock' | 'logger' | 'dataDir' | 'port'>

export interface BrokerProcessOptions {
  /** The data directory; by default a fresh temporary one that the fixture removes. */
  dataDir?: string
  /** Passed to `createBroker()` in the child. */
  options?: ChildBrokerOptions
  /** Port of the first start. @defaultValue 0 (any free port) */
  port?: number
}

export interface RestartOptions {
  /** @defaultValue the current port, so clients can reconnect to the same URL; 0 for any free port */
  port?: number
}

export interface BrokerProcess {
  /** Of the process running now (or last): restart() may change it. */
  readonly url: string
  readonly port: number
  readonly dataDir: string
  /** The current child process (replaced by restart()). */
  readonly child: ChildProcess
  readonly running: boolean
  /** Starts that found the port taken and were tried again. */
  readonly busyPortRetries: number
  /**
   * Starts a new process on the same data directory (on the same port unless
   * told otherwise) and waits until it listens. A running one is closed
   * gracefully first.
   */
  restart (options?: RestartOptions): Promise<void>
  /** SIGKILL, and wait for the exit: no shutdown code runs, as in a power cut of the process. */
  kill (): Promise<void>
  /** SIGTERM, and wait for the exit; rejects unless the broker shut down cleanly (exit 0). */
  close (): Promise<void>
  /**
   * Kills the process if it runs and removes the data directory the fixture
   * made. Idempotent; runs by itself when the test that started the broker ends.
   */
  dispose (): Promise<void>
}

/**
 * A fleetq broker in a child process, on a real LevelDB in `dataDir`, for
 * tests that need `kill -9` (docs/durability.md): in-process brokers cannot
 * be killed without killing the test.
 */
export async function startBrokerProcess (init: BrokerProcessOptions = {}): Promise<BrokerProcess> {
  const ownsDir = init.dataDir === undefined
  const dataDir = init.dataDir ?? await mkdtemp(join(tmpdir(), 'fleetq-child-'))
  let current: NodeChild | null = null
  let port = init.port ?? 0
  let disposed: Promise<void> | null = null
  let busyPortRetries = 0

  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    const child = current
    if (child === null) return
    const exit = await child.kill(signal)
    if (signal === 'SIGTERM' && exit.code !== 0 && exit.signal !== 'SIGKILL') {
      throw new Error(`the broker did not shut down cleanly on SIGTERM (${JSON.stringify(exit)}):\n${child.stderr()}`)
    }
  }

  const start = async (wanted: number): Promise<void> => {
    // The port came from the ephemeral range: while no broker held it, a
    // client socket of a parallel test file may have been given it. Such
    // sockets are short-lived: try again for a while rather than fail.
    const deadline = Date.now() + 15_000
    for (let attempt = 1; ; attempt++) {
      const child = spawnNodeChild(childScript, [JSON.stringify({ dataDir, port: wanted, options: init.options ?? {} })])
      current = child
      const line = await child.waitForLine((l) => parseEvent(l) !== undefined, 'the broker child to listen')
      const event = parseEvent(line)!
      if (event.event === 'listening') {
        port = event.port
        return
      }
      await child.exited
      if (event.code !== PORT_IN_USE || wanted === 0 || Date.now() > deadline) {
        throw new Error(`the broker child could not start (${String(event.code)}, attempt ${attempt}): ${event.message}\n${child.stderr()}`)
      }
      busyPortRetries++
      await new Promise((resolve) => setTimeout(resolve, Math.min(50 * attempt, 500)))
    }
  }

  const handle: BrokerProcess = {
    get url () { return `mqtt://127.0.0.1:${port}` },
    get port () { return port },
    dataDir,
    get child () { return current!.child },
    get running () { return current !== null && !current.hasExited },
    get busyPortRetries () { return busyPortRetries },
    async restart (options = {}) {
      if (disposed !== null) throw new Error('restart() after dispose()')
      if (handle.running) await stop('SIGTERM')
      await start(options.port ?? port)
    },
    kill: () => stop('SIGKILL'),
    close: () => stop('SIGTERM'),
    dispose () {
      disposed ??= (async () => {
        await current?.kill('SIGKILL')
        if (ownsDir) await rm(dataDir, { recursive: true, force: true })
      })()
      return disposed
    }
  }

  try {
    // Inside a test: cleaned up when it ends, after its afterEach hooks.
    onTestFinished(() => handle.dispose())
  } catch {
    // Outside a test (beforeAll): the caller disposes.
  }
  try {
    await start(port)
  } catch (err) {
    await handle.dispose()
    throw err
  }
  return handle
}

type ChildEvent =
  | { event: 'listening', port: number }
  | { event: 'failed', code: string | null, message: string }

function parseEvent (line: string): ChildEvent | undefined {
  if (!line.startsWith('{')) return undefined
  try {
    const parsed = JSON.parse(line) as Partial<ChildEvent>
    return parsed.event === 'listening' || parsed.event === 'failed' ? parsed as ChildEvent : undefined
  } catch {
    return undefined
  }
}
