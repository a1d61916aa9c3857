import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { collectText, watchLines, type ChildExit } from './line-watcher.js'

const cliPath = fileURLToPath(new URL('../../broker/cli.ts', import.meta.url))
// An absolute loader URL, so the child can run from any working directory.
const tsxLoader = import.meta.resolve('tsx')

export type CliExit = ChildExit

/** A pino JSON log line from the broker's stderr. */
export interface LogLine {
  level: number
  msg: string
  [field: string]: unknown
}

export interface CliOptions {
  /** Extra environment; FLEETQ_* variables of the test run itself are never passed on. */
  env?: Record<string, string>
  cwd?: string
}

export interface CliProcess {
  child: ChildProcess
  /** Every stderr line so far. */
  readonly stderrLines: string[]
  readonly stdout: () => string
  /** Resolves with the process's exit, whenever it comes. */
  readonly exited: Promise<CliExit>
  /** Resolves with the first stderr line (past or future) matching `predicate`; rejects if the process exits first. */
  waitForLine (predicate: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string>
  /** Like waitForLine, for the first JSON log line whose `msg` is `msg`. */
  waitForLog (msg: string, timeoutMs?: number): Promise<LogLine>
  /** Sends `signal` (unless the process has exited) and waits for the exit. */
  kill (signal?: NodeJS.Signals): Promise<CliExit>
}

/** Runs `fleetq <args>` from the TypeScript sources in a child process. */
export function spawnCli (args: string[], options: CliOptions = {}): CliProcess {
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('FLEETQ_')))
  const child = spawn(process.execPath, ['--import', tsxLoader, cliPath, ...args], {
    cwd: options.cwd,
    // `fleetq broker` opens HTTP on 8080 by default: tests running side by side take any free port.
    env: { ...env, FLEETQ_HTTP_PORT: '0', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const watcher = watchLines(child, child.stderr!, {
    name: 'fleetq',
    timeoutMs: 90_000,
    stderr: () => watcher.lines.join('\n')
  })
  return {
    child,
    stderrLines: watcher.lines,
    stdout: collectText(child.stdout),
    exited: watcher.exited,
    waitForLine: watcher.waitForLine,
    async waitForLog (msg, timeoutMs) {
      const line = await watcher.waitForLine((l) => parseLog(l)?.msg === msg, `log "${msg}"`, timeoutMs)
      return parseLog(line)!
    },
    async kill (signal = 'SIGTERM') {
      return watcher.kill(signal)
    }
  }
}

/** Runs the CLI to completion: for commands expected to exit on their own. */
export async function runCli (args: string[], options: CliOptions = {}): Promise<CliExit & { stderr: string, stdout: string }> {
  const cli = spawnCli(args, options)
  const exit = await cli.exited
  return { ...exit, stderr: cli.stderrLines.join('\n'), stdout: cli.stdout() }
}

export interface RunningBroker extends CliProcess {
  url: string
  port: number
  /** The 'broker listening' log line. */
  listening: LogLine
}

/** Starts `fleetq broker <args>` and waits for its 'broker listening' log line. */
export async function startCliBroker (args: string[], options: CliOptions = {}): Promise<RunningBroker> {
  const cli = spawnCli(['broker', ...args], options)
  try {
    const listening = await cli.waitForLog('broker listening')
    const url = String(listening.url)
    return { ...cli, url, port: Number(new URL(url).port), listening }
  } catch (err) {
    await cli.kill('SIGKILL')
    throw err
  }
}

export function parseLog (line: string): LogLine | undefined {
  if (!line.startsWith('{')) return undefined
  try {
    return JSON.parse(line) as LogLine
  } catch {
    return undefined
  }
}

/** The lines fleetq itself wrote for the user (not JSON logs). */
export function userLines (stderr: string): string[] {
  return stderr.split('\n').filter((line) => line.startsWith('fleetq:'))
}
