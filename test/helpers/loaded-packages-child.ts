// Starts a broker with the options in argv[2] (JSON) on the data directory
// argv[3], prints which of the packages named in argv[4] (comma-separated)
// the process has loaded, as {"loaded":[...]}, closes the broker and exits.
// Run by test/lazy-modules.test.ts, in its own process: the test runner
// itself has loaded ws and others through mqtt.js.
import { createRequire } from 'node:module'
import { sep } from 'node:path'
import { createBroker, type BrokerOptions } from '../../broker/index.js'
import { exitWithParent } from './child-process.js'

exitWithParent()
const [optionsJson = '{}', dataDir = '', names = ''] = process.argv.slice(2)
const broker = await createBroker({ ...JSON.parse(optionsJson) as BrokerOptions, dataDir, logLevel: 'silent' })
// ws and prom-client are CommonJS: imported from ESM, they still go through require's cache.
const files = Object.keys(createRequire(import.meta.url).cache)
const loaded = names.split(',').filter((name) => files.some((file) => file.includes(`${sep}node_modules${sep}${name}${sep}`)))
process.stdout.write(JSON.stringify({ loaded }) + '\n')
await broker.close()
process.exit(0)
