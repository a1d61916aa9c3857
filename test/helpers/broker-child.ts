// A broker in its own process, for tests that kill it with SIGKILL (see
// ./broker-process.ts, which starts it):
//   node --import tsx test/helpers/broker-child.ts '<json>'
// where <json> is {"dataDir": ..., "port": ..., "options": {...broker options}}.
// Writes one JSON line on stdout: {"event":"listening","port":N} once it
// listens, or {"event":"failed","code":...,"message":...} and exits 3 if it
// cannot start. SIGTERM closes it gracefully (exit 0, or 1 if close failed).
import { createBroker, type BrokerOptions } from '../../broker/index.js'
import { exitWithParent } from './child-process.js'

interface ChildConfig { dataDir: string, port: number, options?: BrokerOptions }

const [json] = process.argv.slice(2)
if (json === undefined) {
  process.stderr.write('usage: broker-child.ts \'{"dataDir":...,"port":...,"options":{...}}\'\n')
  process.exit(2)
}
exitWithParent()
const config = JSON.parse(json) as ChildConfig
const logLevel = (process.env['FLEETQ_CHILD_LOG'] as BrokerOptions['logLevel']) ?? 'warn'
try {
  const broker = await createBroker({ logLevel, ...config.options, dataDir: config.dataDir, port: config.port })
  process.on('SIGTERM', () => { broker.close().then(() => process.exit(0), () => process.exit(1)) })
  process.stdout.write(JSON.stringify({ event: 'listening', port: broker.port }) + '\n')
} catch (err) {
  const { code, message } = err as { code?: unknown, message?: unknown }
  process.stdout.write(JSON.stringify({ event: 'failed', code: code ?? null, message: String(message) }) + '\n')
  process.exit(3)
}
