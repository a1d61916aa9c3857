// redis-server for the BullMQ side of `npm run bench:tasks`: our own process
// on a free port with a fresh directory, in one of two configurations.
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, spawnBrokerChild, waitForPort } from './child.js'

/** Debian's redis-server, or `$REDIS_SERVER`. */
const redisBinary = process.env.REDIS_SERVER ?? '/usr/bin/redis-server'

/**
 * `none`: nothing written to disk (`--save '' --appendonly no`), so a crash
 * loses every queued job. `aof`: every write appended to the AOF and fsynced
 * once a second (`--appendfsync everysec`, Redis's recommended durable
 * setting; a crash loses at most the last second): the fair comparison with
 * fleetq, which writes each task to LevelDB before acknowledging it.
 */
export type RedisPersistence = 'none' | 'aof'

export interface RedisServer {
  endpoint: string
  pid: number
  close (): Promise<void>
}

export async function startRedis (persistence: RedisPersistence): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetq-bench-redis-'))
  const durability = persistence === 'aof'
    ? ['--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec']
    : ['--save', '', '--appendonly', 'no']
  let lastError: unknown
  // Another process may take the free port before redis binds it: retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const child = spawnBrokerChild(redisBinary, ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', '--loglevel', 'warning', ...durability])
    try {
      await waitForPort(port, child)
      const pid = child.child.pid
      if (pid === undefined) throw new Error('redis-server has no pid')
      let closed: Promise<void> | null = null
      return {
        endpoint: `redis://127.0.0.1:${port}`,
        pid,
        close: () => {
          closed ??= child.stop().finally(() => rm(dir, { recursive: true, force: true }))
          return closed
        }
      }
    } catch (err) {
      lastError = err
      await child.stop()
    }
  }
  await rm(dir, { recursive: true, force: true })
  throw new Error(`redis-server did not start: ${(lastError as Error).message}`, { cause: lastError })
}

/** BullMQ's connection options for a redis:// endpoint. */
export function redisConnection (endpoint: string): { host: string, port: number } {
  const url = new URL(endpoint)
  return { host: url.hostname, port: Number(url.port) }
}

/** `redis-server --version`'s `v=` field, or 'unknown'. */
export function redisVersion (): string {
  try {
    return /v=(\S+)/.exec(execFileSync(redisBinary, ['--version'], { encoding: 'utf8' }))?.[1] ?? 'unknown'
  } catch {
    return 'unknown'
  }
}
