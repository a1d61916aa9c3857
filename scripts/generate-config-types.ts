import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, relative } from 'node:path'
import { configPaths, renderConfigTypes } from './config-types.js'

// npm run gen:config: regenerate broker/generated/config-types.ts after editing
// schemas/broker-config.schema.json. test/generated-types.test.ts fails while
// the file is stale.
const source = await renderConfigTypes()
await mkdir(dirname(configPaths.output), { recursive: true })
await writeFile(configPaths.output, source)
console.log(`wrote ${relative(process.cwd(), configPaths.output)}`)
