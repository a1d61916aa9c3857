import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, relative } from 'node:path'
import { paths, renderTaskTypes } from './task-types.js'

// npm run gen:types: regenerate protocol/generated/task-types.ts after editing
// schemas/. test/generated-types.test.ts fails while the file is stale.
const source = await renderTaskTypes()
await mkdir(dirname(paths.output), { recursive: true })
await writeFile(paths.output, source)
console.log(`wrote ${relative(process.cwd(), paths.output)}`)
