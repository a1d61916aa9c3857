import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

// An absolute loader URL, so a child runs from any working directory.
const tsxLoader = import.meta.resolve('tsx')

export interface ChildExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface NodeChild {
  child: ChildProcess
  /** Every stdout line so far. */
  readonly lines: string[]
  /** Everything written to stderr so far. */
  stderr (): string
  /** Resolves with the exit, whenever it comes (after stdout and stderr are read). */
  readonly exited: Promise<ChildExit>
  readonly hasExited: boolean
  /**
   * Resolves with the first stdout line (past or future) matching `predicate`;
   * rejects if the child exits first, or after `timeoutMs`.
   */
  waitForLine (predicate: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string>
  /** Sends `signal` unless the child has exited, and waits for the exit. */
  kill (signal: NodeJS.Signals): Promise<ChildExit>
}

/**
 * Runs a TypeScript file of test/helpers/ in its own Node process (through
 * tsx), reading its stdout line by line. The child's stdin is a pipe it
 * watches: if this process dies without cleaning up, the child sees the pipe
 * close and exits rather than outlive the test run.
 */
export function spawnNodeChild (script: URL, args: string[], env: Record<string, string> = {}): NodeChild {
  const child = spawn(process.execPath, ['--import', tsxLoader, fileURLToPath(script), ...args], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  const lines: string[] = []
  let stderr = ''
  const watchers = new Set<(line: string) => void>()
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line)
    for (const watch of watchers) watch(line)
  })
  // 'close' rather than 'exit': by then every line has been read.
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }))
  })
  let hasExited = false
  void exited.then(() => { hasExited = true })

  const waitForLine = (predicate: (line: string) => boolean, what: string, timeoutMs = 60_000): Promise<string> => {
    const seen = lines.find(predicate)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise<string>((resolve, reject) => {
      const done = (): void => { watchers.delete(watch); clearTimeout(timer) }
      const watch = (line: string): void => {
        if (predicate(line)) { done(); resolve(line) }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr:\n${stderr}`))
      }, timeoutMs)
      watchers.add(watch)
      void exited.then((exit) => {
        if (!watchers.has(watch)) return
        done()
        reject(new Error(`child exited (${JSON.stringify(exit)}) before ${what}; stderr:\n${stderr}`))
      })
    })
  }

  return {
    child,
    lines,
    stderr: () => stderr,
    exited,
    get hasExited () { return hasExited },
    waitForLine,
    async kill (signal) {
      if (!hasExited && child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    }
  }
}

/** In a child made by spawnNodeChild: exit once the parent's end of stdin closes (the parent died). */
export function exitWithParent (): void {
  process.stdin.on('data', () => undefined)
  process.stdin.once('close', () => process.exit(1))
}
