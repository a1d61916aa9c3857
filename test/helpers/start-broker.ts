import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { createBroker, type Broker, type BrokerOptions } from '../../broker/index.js'

export interface TestBroker {
  /** The broker currently running (replaced by restart()). */
  broker: Broker
  url: string
  port: number
  dataDir: string
  /** Closes the broker gracefully and starts a new one on the same port and data. */
  restart (): Promise<void>
  /** Closes the broker and removes its data directory. Idempotent. */
  close (): Promise<void>
}

/**
 * A real broker on a free port with a real LevelDB in a fresh temporary
 * directory. For crash tests, see ./broker-process.ts.
 */
export async function startBroker (options: BrokerOptions = {}): Promise<TestBroker> {
  const dataDir = options.dataDir ?? await mkdtemp(join(tmpdir(), 'fleetq-test-'))
  const base: BrokerOptions = { port: 0, logLevel: 'silent', ...options, dataDir }
  let broker = await createBroker(base)
  const port = broker.port
  let closed: Promise<void> | null = null
  const handle: TestBroker = {
    broker,
    url: `mqtt://127.0.0.1:${port}`,
    port,
    dataDir,
    async restart () {
      await broker.close()
      broker = await createBroker({ ...base, port })
      handle.broker = broker
    },
    close () {
      closed ??= (async () => {
        await broker.close()
        if (options.dataDir === undefined) await rm(dataDir, { recursive: true, force: true })
      })()
      return closed
    }
  }
  return handle
}

/** A topic prefix no other test uses. */
export function uniqueTopic (name = 't'): string {
  return `${name}-${randomUUID().slice(0, 8)}`
}
