// Starts a broker on the data directory argv[2], sends one QoS 1 message
// through it with an mqtt.js client and prints, as one JSON line, the quiet
// debug state and the payload that came back. Run by test/quiet-debug.test.ts
// in its own process: the test runner has loaded mqtt-packet long before.
import { createBroker } from '../../broker/index.js'
import { quietDebugState } from '../../broker/mqtt/internals/quiet-debug.js'
import mqtt from 'mqtt'
import { exitWithParent } from './child-process.js'

exitWithParent()
const [dataDir = ''] = process.argv.slice(2)
const broker = await createBroker({ port: 0, host: '127.0.0.1', dataDir, logLevel: 'silent' })
const client = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { reconnectPeriod: 0 })
await client.subscribeAsync('quiet/#', { qos: 1 })
const received = new Promise<string>((resolve) => client.once('message', (_topic, payload) => { resolve(payload.toString()) }))
await client.publishAsync('quiet/1', 'hello', { qos: 1 })
const payload = await received
process.stdout.write(JSON.stringify({ ...quietDebugState(), payload }) + '\n')
await client.endAsync()
await broker.close()
process.exit(0)
