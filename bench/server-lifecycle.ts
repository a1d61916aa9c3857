import { rm } from 'node:fs/promises'
import type { Broker } from '../broker/index.js'
import { cpuProfileDir, writeSourceMaps } from './source-maps.js'

/**
 * How a benchmark's broker child stops: on SIGTERM, SIGINT, or when stdin
 * closes (the parent died). Closes the broker, removes the data directory it
 * owns, writes the source maps of a CPU-profiled run (Node writes the profile
 * itself at exit), then exits: 1 if the close failed.
 */
export function stopOnSignals (broker: Broker, o: { removeDir: string | null, beforeClose?: () => void }): void {
  let stopping = false
  async function shutdown (): Promise<void> {
    if (stopping) return
    stopping = true
    o.beforeClose?.()
    let code = 0
    try {
      await broker.close()
    } catch (err) {
      process.stderr.write(`close failed: ${String(err)}\n`)
      code = 1
    }
    if (o.removeDir !== null) await rm(o.removeDir, { recursive: true, force: true })
    const profileDir = cpuProfileDir()
    if (profileDir !== null) await writeSourceMaps(profileDir).catch((err: unknown) => { process.stderr.write(`source maps not written: ${String(err)}\n`) })
    process.exit(code)
  }
  process.on('SIGTERM', () => { void shutdown() })
  process.on('SIGINT', () => { void shutdown() })
  process.stdin.on('end', () => { void shutdown() })
  process.stdin.resume()
}
