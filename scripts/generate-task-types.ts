import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { paths, renderTaskTypes, renderUserTaskTypes } from './task-types.js'

// npm run gen:types: regenerate protocol/generated/task-types.ts after editing
// schemas/. test/generated-types.test.ts fails while the file is stale.
//
// npm run gen:types -- --dir <folder> --out <file> [--module <specifier>]:
// types for the user task types of a schemas folder (the broker's
// tasks.schemasDir), added to the client library's TaskPayloads
// (docs/configuration.md, "Your own task types").
const { values } = parseArgs({
  options: {
    dir: { type: 'string' },
    out: { type: 'string' },
    module: { type: 'string' }
  }
})

try {
  if (values.dir === undefined && values.out === undefined && values.module === undefined) {
    const source = await renderTaskTypes()
    await write(paths.output, source)
  } else {
    if (values.dir === undefined || values.out === undefined) throw new Error('--dir <folder> and --out <file> go together')
    const out = resolve(values.out)
    await write(out, await renderUserTaskTypes({ dir: resolve(values.dir), out, module: values.module }))
  }
} catch (err) {
  process.stderr.write(`gen:types: ${(err as Error).message}\n`)
  process.exit(2)
}

async function write (file: string, source: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true })
  await writeFile(file, source)
  console.log(`wrote ${relative(process.cwd(), file)}`)
}
