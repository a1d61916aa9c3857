import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/**
 * This package's version, from its package.json (`$SYS/broker/version`): one
 * level up from broker/version.ts (run by tsx), two from dist/broker/version.js.
 */
export const FLEETQ_VERSION: string = readVersion()

function readVersion (): string {
  const path = ['../package.json', '../../package.json']
    .map((relative) => fileURLToPath(new URL(relative, import.meta.url)))
    .find((candidate) => existsSync(candidate))
  if (path === undefined) return 'unknown'
  return (JSON.parse(readFileSync(path, 'utf8')) as { version?: string }).version ?? 'unknown'
}
