import { fork, type ChildProcess } from 'node:child_process'

/**
 * A benchmark's own Node process (a task producer or worker, a queue-curve
 * worker), forked as bench/compiled.ts says and spoken to over IPC: messages
 * are objects with a `kind`, and the parent waits for the next one of a kind.
 */
export class IpcChild<In, Out extends { kind: string }> {
  readonly #process: ChildProcess
  readonly #label: string
  readonly #inbox: Out[] = []
  readonly #exited: Promise<string>
  #exitedWith: string | null = null
  readonly #listeners = new Set<() => void>()
  #stderr = ''

  /** `intercept` sees every message first; one it returns true for is not kept for `next()` (a running count, say). */
  constructor (command: { execArgv: string[], file: string }, config: object, label: string, intercept: (message: Out) => boolean = () => false) {
    this.#label = label
    // process.execPath directly, not npx: the pid read from /proc is the process doing the work.
    this.#process = fork(command.file, [JSON.stringify(config)], { execArgv: command.execArgv, stdio: ['ignore', 'inherit', 'pipe', 'ipc'] })
    this.#process.stderr?.on('data', (chunk: Buffer) => {
      // Bounded: only the tail is shown on an error.
      this.#stderr = (this.#stderr + chunk.toString()).slice(-8_000)
    })
    this.#process.on('message', (message: Out) => {
      if (intercept(message)) return
      this.#inbox.push(message)
      for (const listener of this.#listeners) listener()
    })
    this.#exited = new Promise((resolve) => {
      const ended = (how: string): void => {
        this.#exitedWith ??= how
        for (const listener of this.#listeners) listener()
        resolve(this.#exitedWith)
      }
      this.#process.once('exit', (code, signal) => ended(signal === null ? `code ${String(code)}` : `signal ${signal}`))
      this.#process.once('error', (err) => ended(`spawn error: ${err.message}`))
    })
  }

  get pid (): number {
    const pid = this.#process.pid
    if (pid === undefined) throw new Error(`${this.#label} did not start`)
    return pid
  }

  send (message: In): void {
    if (this.#exitedWith === null) this.#process.send(message as object)
  }

  /** The next message of `kind`, rejecting if the process exits first or nothing comes within `timeoutMs`. */
  next (kind: Out['kind'], timeoutMs: number): Promise<Out> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`${this.#label}: no '${kind}' within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs)
      const finish = (err: Error | null, message?: Out): void => {
        clearTimeout(timer)
        this.#listeners.delete(check)
        if (err === null && message !== undefined) resolve(message)
        else reject(err ?? new Error('no message'))
      }
      const check = (): void => {
        const at = this.#inbox.findIndex((m) => m.kind === kind)
        if (at >= 0) finish(null, this.#inbox.splice(at, 1)[0])
        else if (this.#exitedWith !== null) finish(new Error(`${this.#label} exited (${this.#exitedWith}) before '${kind}': ${this.#stderr.trim()}`))
      }
      this.#listeners.add(check)
      check()
    })
  }

  stderrTail (): string {
    return this.#stderr === '' ? '' : `[${this.#label}] ${this.#stderr.trim()}`
  }

  /** SIGKILL if still running; resolves once it has exited. */
  async kill (): Promise<void> {
    if (this.#exitedWith !== null || this.#process.pid === undefined) return
    this.#process.kill('SIGKILL')
    await this.#exited
  }
}
