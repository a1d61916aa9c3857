// A broker in its own process, for tests that kill it with SIGKILL.
// Usage: node --import tsx test/helpers/broker-child.ts <dataDir> [port]
// Prints {"port":N} on stdout once it listens.
import { createBroker } from '../../broker/index.js'

const [dataDir, port] = process.argv.slice(2)
if (dataDir === undefined) {
  process.stderr.write('usage: broker-child.ts <dataDir> [port]\n')
  process.exit(2)
}
const broker = await createBroker({ dataDir, port: Number(port ?? 0), logLevel: (process.env['FLEETQ_CHILD_LOG'] as 'warn' | undefined) ?? 'warn' })
process.stdout.write(JSON.stringify({ port: broker.port }) + '\n')
process.on('SIGTERM', () => { broker.close().then(() => process.exit(0), () => process.exit(1)) })
