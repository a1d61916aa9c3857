import { execFile } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { BenchTarget } from './brokers.js'
import { freePort, spawnBrokerChild, waitForPort } from './child.js'

export const mosquittoPath = process.env.MOSQUITTO ?? '/usr/sbin/mosquitto'

/**
 * Settings for a fair comparison with fleetq (mosquitto.conf(5), 2.0.11).
 * Each line says which fleetq behaviour it matches.
 */
export function mosquittoConfig (port: number, dir: string): string {
  return [
    '# Written by fleetq bench/mosquitto.ts for one benchmark run.',
    `listener ${port} 127.0.0.1`,
    'allow_anonymous true',
    // fleetq stores sessions and QoS 1 messages in LevelDB. Mosquitto would
    // keep them in memory and write mosquitto.db only on exit and every
    // autosave_interval (30 min), so nothing survives a kill -9 either way;
    // off, it writes nothing at all.
    'persistence false',
    `persistence_location ${dir}/`,
    // Unlimited (the default, said explicitly): bench/connections.ts opens
    // tens of thousands; the open-file limit is raised by bench/child.ts.
    'max_connections -1',
    // Debian's mosquitto started as root switches to user mosquitto, which
    // cannot write in our temporary directory.
    'user root',
    // Default 20 outgoing QoS 1 messages in flight per client; Aedes has no
    // such window and sends as fast as the socket takes them.
    'max_inflight_messages 0',
    // Default 1000 queued per client, beyond which Mosquitto silently drops
    // (QoS 0 included while the client is online): a fan-in burst with
    // 4 x 100 in flight would lose messages. fleetq's bound is 100,000.
    'max_queued_messages 100000',
    // fleetq disables Nagle on every socket; Mosquitto does not
    // by default, which would add delayed-ACK stalls to its QoS 1 latency.
    'set_tcp_nodelay true',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    ''
  ].join('\n')
}

/** `mosquitto 2.0.11`, or null if it cannot be run. */
export async function mosquittoVersion (): Promise<string | null> {
  try {
    // `mosquitto -h` prints its version and exits with status 3.
    await promisify(execFile)(mosquittoPath, ['-h'], { timeout: 5_000 })
    return null
  } catch (err) {
    const stdout = (err as { stdout?: string }).stdout ?? ''
    const match = /mosquitto version (\S+)/.exec(stdout)
    return match?.[1] === undefined ? null : `mosquitto ${match[1]}`
  }
}

/** Starts Mosquitto on a free 127.0.0.1 port with a temporary config and data directory. */
export async function startMosquitto (): Promise<BenchTarget> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetq-bench-mosquitto-'))
  let lastError: unknown = null
  try {
    // The free port can be taken between our check and Mosquitto's bind.
    for (let attempt = 0; attempt < 3; attempt++) {
      const port = await freePort()
      const configPath = join(dir, 'mosquitto.conf')
      await writeFile(configPath, mosquittoConfig(port, dir))
      const child = spawnBrokerChild(mosquittoPath, ['-c', configPath])
      try {
        await waitForPort(port, child)
      } catch (err) {
        lastError = err
        await child.stop()
        continue
      }
      let closing: Promise<void> | null = null
      return {
        name: 'mosquitto',
        url: `mqtt://127.0.0.1:${port}`,
        pid: child.child.pid ?? null,
        close () {
          closing ??= (async () => {
            await child.stop()
            await rm(dir, { recursive: true, force: true })
          })()
          return closing
        }
      }
    }
  } catch (err) {
    lastError = err
  }
  await rm(dir, { recursive: true, force: true })
  throw new Error(`mosquitto did not start: ${String(lastError)}`, { cause: lastError })
}
