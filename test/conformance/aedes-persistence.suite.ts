// aedes-persistence's abstract suite (node:test) against fleetq's persistence,
// on a fresh LevelDB in a temporary directory per test (as aedes-persistence-level
// runs it) or on memory-level. Started by test/persistence-conformance.test.ts;
// runnable alone:
//   FLEETQ_SUITE_STORE=level|memory FLEETQ_SUITE_CONFIG=plain|production \
//   node --import tsx --test test/conformance/aedes-persistence.suite.ts
import test from 'node:test'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { Keyspace } from '../../broker/persistence/keyspace.js'
import { createSessionStores } from '../../broker/persistence/open-persistence.js'
import { PRODUCTION_SKIPS } from './aedes-production-skips.js'

const require = createRequire(import.meta.url)
const abstractSuite = require('aedes-persistence/abstract.js') as (opts: object) => void

const backend = process.env['FLEETQ_SUITE_STORE'] ?? 'level'
// 'production': `trackDeliveries` on, as createStores (open-persistence.ts) builds it.
const production = process.env['FLEETQ_SUITE_CONFIG'] === 'production'

const dirs: string[] = []
process.on('exit', () => { for (const dir of dirs) rmSync(dir, { recursive: true, force: true }) })

const seen = new Set<string>()
type TestFn = (t: unknown) => Promise<void> | void
function suiteTest (name: string, fn: TestFn): void {
  seen.add(name)
  const reason = production ? PRODUCTION_SKIPS[name] : undefined
  if (reason !== undefined) {
    test(`${name} [skipped with trackDeliveries: ${reason}]`, { skip: reason }, fn)
    return
  }
  // A test that hangs fails instead of stalling the run.
  test(name, { timeout: 20_000 }, fn)
}

abstractSuite({
  test: suiteTest,
  testAsync: true,
  persistence: async () => {
    let location: string | undefined
    if (backend !== 'memory') {
      location = mkdtempSync(join(tmpdir(), 'fleetq-abstract-'))
      dirs.push(location)
    }
    const keyspace = await Keyspace.open({ location })
    return createSessionStores(keyspace, { trackDeliveries: production }).persistence
  }
})

// If an upgrade of aedes-persistence renames or drops one of them, the skip
// list must be revisited rather than silently skip nothing.
test('every production skip names a test of the abstract suite', () => {
  const unknown = Object.keys(PRODUCTION_SKIPS).filter((name) => !seen.has(name))
  if (unknown.length > 0) throw new Error(`not in the abstract suite: ${unknown.join(', ')}`)
})
