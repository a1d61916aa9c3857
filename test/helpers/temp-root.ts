import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'

export interface TempRoot {
  /** The root directory (set once the file's tests start). */
  readonly path: string
  /** A new, empty directory under the root: `{name}-{n}`. */
  freshDir (name?: string): Promise<string>
}

/**
 * A temporary root for one test file: made before its tests, removed with
 * everything in it after them. Call at the top level of the file.
 */
export function tempRoot (prefix: string): TempRoot {
  let path: string | undefined
  let n = 0
  beforeAll(async () => { path = await mkdtemp(join(tmpdir(), prefix)) })
  afterAll(async () => { if (path !== undefined) await rm(path, { recursive: true, force: true }) })
  const root = (): string => {
    if (path === undefined) throw new Error('tempRoot: used before the file\'s tests started')
    return path
  }
  return {
    get path () { return root() },
    async freshDir (name = 'd') {
      const dir = join(root(), `${name}-${n++}`)
      await mkdir(dir, { recursive: true })
      return dir
    }
  }
}
