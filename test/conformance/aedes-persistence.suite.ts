// aedes-persistence's abstract suite (node:test) against fleetq's persistence,
// on a fresh LevelDB in a temporary directory per test, as aedes-persistence-level
// runs it. Started by test/persistence-conformance.test.ts; runnable alone:
//   node --import tsx --test test/conformance/aedes-persistence.suite.ts
import test from 'node:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { LevelPersistence } from '../../broker/persistence/level-persistence.js'
import { openLevelStore, openMemoryStore } from '../../broker/persistence/store.js'

const require = createRequire(import.meta.url)
const abstractSuite = require('aedes-persistence/abstract.js') as (opts: object) => void

const backend = process.env['FLEETQ_SUITE_STORE'] ?? 'level'

abstractSuite({
  test,
  testAsync: true,
  persistence: () => backend === 'memory'
    ? new LevelPersistence(openMemoryStore())
    : new LevelPersistence(openLevelStore(mkdtempSync(join(tmpdir(), 'fleetq-abstract-'))))
})
