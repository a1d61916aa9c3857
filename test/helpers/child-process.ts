import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { collectText, watchLines, type ChildExit } from './line-watcher.js'

export type { ChildExit }

// An absolute loader URL, so a child runs from any working directory.
const tsxLoader = import.meta.resolve('tsx')

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
  const stderr = collectText(child.stderr)
  const watcher = watchLines(child, child.stdout!, { name: 'child', timeoutMs: 60_000, stderr })
  return {
    child,
    lines: watcher.lines,
    stderr,
    exited: watcher.exited,
    get hasExited () { return watcher.hasExited },
    waitForLine: watcher.waitForLine,
    kill: watcher.kill
  }
}

/** In a child made by spawnNodeChild: exit once the parent's end of stdin closes (the parent died). */
export function exitWithParent (): void {
  process.stdin.on('data', () => undefined)
  process.stdin.once('close', () => process.exit(1))
}
