import { execFile, spawn } from 'node:child_process'
import { existsSync, statSync } from 'node:fs'
import { mkdir, rename } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { withRaisedFileLimit } from './child.js'

/**
 * The C load generator (bench/mqload/mqload.c, on libmosquitto): one thread
 * per client, so it drives a broker at 100k msg/s where mqtt.js in one Node
 * process tops out near 15k. Built on demand with the system's `cc`.
 */
export const mqloadSource = fileURLToPath(new URL('./mqload/mqload.c', import.meta.url))
export const mqloadBinary = fileURLToPath(new URL('./.build/mqload', import.meta.url))

/** Debian's libmosquitto-dev installs the header here; `cc` would fail without it. */
const MOSQUITTO_HEADER = '/usr/include/mosquitto.h'

export class MqloadUnavailableError extends Error {
  override name = 'MqloadUnavailableError'
}

/** Why mqload cannot be built here, or null when cc and libmosquitto-dev are present. */
export async function mqloadMissingPrerequisite (): Promise<string | null> {
  try {
    await promisify(execFile)('cc', ['--version'], { timeout: 10_000 })
  } catch {
    return 'no C compiler (cc) on PATH: apt-get install gcc libmosquitto-dev'
  }
  if (!existsSync(MOSQUITTO_HEADER)) return `no ${MOSQUITTO_HEADER}: apt-get install libmosquitto-dev`
  return null
}

let building: Promise<string> | null = null

/**
 * Path of a built mqload, compiling it first when the binary is missing or
 * older than its source. Compiles to a temporary name and renames, so two
 * benchmark processes never run a half-written binary.
 */
export function ensureMqload (): Promise<string> {
  building ??= build().finally(() => { building = null })
  return building
}

async function build (): Promise<string> {
  if (existsSync(mqloadBinary) && statSync(mqloadBinary).mtimeMs >= statSync(mqloadSource).mtimeMs) return mqloadBinary
  const missing = await mqloadMissingPrerequisite()
  if (missing !== null) throw new MqloadUnavailableError(`cannot build the C load generator: ${missing}`)
  await mkdir(dirname(mqloadBinary), { recursive: true })
  const partial = `${mqloadBinary}.${process.pid}.tmp`
  try {
    await promisify(execFile)('cc', ['-O2', '-o', partial, mqloadSource, '-lmosquitto', '-lpthread'], { timeout: 120_000 })
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? String(err)
    throw new MqloadUnavailableError(`cc failed to build ${mqloadSource} (is libmosquitto-dev installed? apt-get install libmosquitto-dev):\n${stderr}`)
  }
  await rename(partial, mqloadBinary)
  return mqloadBinary
}

export interface MqloadOptions {
  port: number
  host?: string
  pubs: number
  subs: number
  qos: 0 | 1
  /** Messages per publisher. */
  msgs: number
  size?: number
  /** `$share/<group>/...` subscribers: each message is expected once in all. */
  share?: string
  topic?: string
  /** Messages per second per publisher; omitted = as fast as the window allows. */
  rate?: number
  /** Unacknowledged QoS 1 publishes per publisher (mqload's default 100). */
  inflight?: number
  /** Deliveries slower than this count as `slow` (mqload's default 5 ms). */
  slowMs?: number
  /** mqload's own upper bound, seconds. */
  timeout?: number
}

/** mqload's JSON line (bench/mqload/mqload.c prints it on stdout). */
export interface MqloadResult {
  pubs: number
  subs: number
  qos: number
  size: number
  share: boolean
  expected: number
  received: number
  missing: number
  dups: number
  /** First publish to last delivery. */
  seconds: number
  publish_seconds: number
  msgs_per_s: number
  p50_ms: number
  p99_ms: number
  max_ms: number
  p999_ms: number
  slow_ms: number
  /** Deliveries with latency above slow_ms. */
  slow: number
  samples: number
}

export function mqloadArgs (o: MqloadOptions): string[] {
  const args = ['--host', o.host ?? '127.0.0.1', '--port', String(o.port), '--pubs', String(o.pubs), '--subs', String(o.subs),
    '--qos', String(o.qos), '--msgs', String(o.msgs)]
  if (o.size !== undefined) args.push('--size', String(o.size))
  if (o.share !== undefined) args.push('--share', o.share)
  if (o.topic !== undefined) args.push('--topic', o.topic)
  if (o.rate !== undefined) args.push('--rate', String(o.rate))
  if (o.inflight !== undefined) args.push('--inflight', String(o.inflight))
  if (o.slowMs !== undefined) args.push('--slow-ms', String(o.slowMs))
  if (o.timeout !== undefined) args.push('--timeout', String(o.timeout))
  return args
}

/**
 * Runs mqload once and returns its result. Exit status 1 (messages missing)
 * still prints a result; any other failure (refused connection, subscribe
 * refused) rejects with mqload's stderr.
 */
export async function runMqload (options: MqloadOptions, signal?: AbortSignal): Promise<MqloadResult> {
  const binary = await ensureMqload()
  // Three descriptors per client (socket, socket pair): 1,000 subscribers (bench/curves.ts) need more than a 1,024 soft limit.
  const [file, args] = withRaisedFileLimit(binary, mqloadArgs(options))
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(signal === undefined ? {} : { signal }) })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { if (stderr.length < 16_000) stderr += chunk.toString() })
  const code = await new Promise<number | string>((resolve) => {
    child.once('error', (err) => resolve(err.message))
    child.once('close', (status, sig) => resolve(status ?? `signal ${String(sig)}`))
  })
  const line = stdout.split('\n').find((l) => l.startsWith('{'))
  if ((code === 0 || code === 1) && line !== undefined) return JSON.parse(line) as MqloadResult
  throw new Error(`mqload ${mqloadArgs(options).join(' ')} failed (${String(code)}): ${stderr.trim() || stdout.trim()}`)
}
