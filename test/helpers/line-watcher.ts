import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'

export interface ChildExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface LineWatcherOptions {
  /** Names the child in errors: "<name> exited (...) before <what>". */
  name: string
  /** waitForLine's default timeout. */
  timeoutMs: number
  /** What an error ends with, after "; stderr:\n", to show what the child said. */
  stderr: () => string
}

export interface LineWatcher {
  /** Every line of the watched stream so far. */
  readonly lines: string[]
  /** Resolves with the exit, whenever it comes (after every stream is read). */
  readonly exited: Promise<ChildExit>
  readonly hasExited: boolean
  /**
   * Resolves with the first line (past or future) matching `predicate`;
   * rejects if the child exits first, or after `timeoutMs`.
   */
  waitForLine (predicate: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string>
  /** Sends `signal` unless the child has exited, and waits for the exit. */
  kill (signal: NodeJS.Signals): Promise<ChildExit>
}

/** Everything `stream` has written so far, as text. */
export function collectText (stream: Readable | null): () => string {
  let text = ''
  stream?.on('data', (chunk: Buffer) => { text += chunk.toString() })
  return () => text
}

/** Reads `input`, one of `child`'s output streams, line by line, and tracks the child's exit. */
export function watchLines (child: ChildProcess, input: Readable, options: LineWatcherOptions): LineWatcher {
  const lines: string[] = []
  const watchers = new Set<(line: string) => void>()
  createInterface({ input }).on('line', (line) => {
    lines.push(line)
    for (const watch of watchers) watch(line)
  })
  // 'close' rather than 'exit': by then every line has been read.
  const exited = new Promise<ChildExit>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal }))
  })
  let hasExited = false
  void exited.then(() => { hasExited = true })

  const waitForLine = (predicate: (line: string) => boolean, what: string, timeoutMs = options.timeoutMs): Promise<string> => {
    const seen = lines.find(predicate)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise<string>((resolve, reject) => {
      const done = (): void => { watchers.delete(watch); clearTimeout(timer) }
      const watch = (line: string): void => {
        if (predicate(line)) { done(); resolve(line) }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr:\n${options.stderr()}`))
      }, timeoutMs)
      watchers.add(watch)
      void exited.then((exit) => {
        if (!watchers.has(watch)) return
        done()
        reject(new Error(`${options.name} exited (${JSON.stringify(exit)}) before ${what}; stderr:\n${options.stderr()}`))
      })
    })
  }

  return {
    lines,
    exited,
    get hasExited () { return hasExited },
    waitForLine,
    async kill (signal) {
      if (!hasExited && child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    }
  }
}
