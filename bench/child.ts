import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { once } from 'node:events'
import { connect, createServer, type AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'

/** Every broker process this run started and has not reaped yet. */
const live = new Set<ChildProcess>()

// Last resort when the runner dies without its finally blocks (uncaught
// error, process.exit): no broker may outlive the benchmark.
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

export interface BrokerChild {
  child: ChildProcess
  /** Everything the child wrote on stderr, for error messages. */
  stderr (): string
  /** Resolves with the exit code or signal once the child has exited. */
  readonly exited: Promise<string>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. Idempotent. */
  stop (graceMs?: number): Promise<void>
}

/**
 * The command line that runs `command` with its open-file soft limit raised
 * to the hard limit: a broker holding thousands of connections needs one
 * descriptor each (bench/connections.ts). `exec` keeps the broker's pid the
 * child's pid, so /proc figures are the broker's.
 */
export function withRaisedFileLimit (command: string, args: readonly string[]): [string, string[]] {
  return ['/bin/bash', ['-c', 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', command, ...args]]
}

export function spawnBrokerChild (command: string, args: string[], options: SpawnOptions = {}): BrokerChild {
  const [file, argv] = withRaisedFileLimit(command, args)
  const child = spawn(file, argv, { stdio: ['pipe', 'pipe', 'pipe'], ...options })
  live.add(child)
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => {
    // Bounded: a chatty broker must not grow the generator's memory.
    if (stderr.length < 64_000) stderr += chunk.toString()
  })
  const exited = once(child, 'exit').then(([code, signal]) => {
    live.delete(child)
    return signal === null ? `code ${String(code)}` : `signal ${String(signal)}`
  }, (err: unknown) => {
    live.delete(child)
    return `spawn error ${String(err)}`
  })
  child.once('error', () => { live.delete(child) })
  let stopping: Promise<void> | null = null
  return {
    child,
    stderr: () => stderr,
    exited,
    stop (graceMs = 5_000) {
      stopping ??= (async () => {
        if (!live.has(child)) return
        child.kill('SIGTERM')
        const timer = sleep(graceMs, 'timeout', { ref: false })
        if (await Promise.race([exited, timer]) === 'timeout') {
          child.kill('SIGKILL')
          await exited
        }
      })()
      return stopping
    }
  }
}

/**
 * A port that was free a moment ago, for brokers that cannot bind port 0
 * and report it (Mosquitto). Another process could take it before the broker
 * binds; the caller retries on that.
 */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Resolves once 127.0.0.1:`port` accepts TCP connections; bounded by `timeoutMs`. */
export async function waitForPort (port: number, child: BrokerChild, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let exitedWith: string | null = null
  void child.exited.then((how) => { exitedWith = how })
  while (Date.now() < deadline) {
    if (exitedWith !== null) throw new Error(`broker exited (${exitedWith}) before listening:\n${child.stderr()}`)
    if (await canConnect(port)) return
    await sleep(50)
  }
  throw new Error(`broker did not accept connections on port ${port} within ${timeoutMs} ms:\n${child.stderr()}`)
}

function canConnect (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    socket.setTimeout(1_000)
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
    socket.once('timeout', () => done(false))
  })
}
