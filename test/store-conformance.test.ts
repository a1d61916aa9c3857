// Every store's conformance suite (test/conformance/*.suite.ts), on LevelDB in a
// temporary directory and on memory-level. The Aedes persistence has its own:
// aedes-persistence's abstract suite (test/persistence-conformance.test.ts).
import { describe } from 'vitest'
import { createSessionStores } from '../broker/persistence/open-persistence.js'
import { LevelDelayedStore } from '../broker/scheduler/delayed-store.js'
import { LevelScheduleStore } from '../broker/scheduler/schedule-store.js'
import { LevelGroupStore } from '../broker/shared/level-group-store.js'
import { LevelIdempotencyStore } from '../broker/tasks/idempotency-keys.js'
import { BACKENDS, keyspaceHarness } from './conformance/backends.js'
import { delayedStoreSuite } from './conformance/delayed-store.suite.js'
import { groupStoreSuite } from './conformance/group-store.suite.js'
import { idempotencyStoreSuite } from './conformance/idempotency-store.suite.js'
import { journalStoreSuite } from './conformance/journal-store.suite.js'
import { scheduleStoreSuite } from './conformance/schedule-store.suite.js'

for (const backend of BACKENDS) {
  describe(`stores on ${backend.name}`, () => {
    groupStoreSuite(keyspaceHarness(backend, (keyspace) => {
      const store = new LevelGroupStore({ definitions: keyspace.sublevel('group-definitions'), messages: keyspace.sublevel('group-messages') }, keyspace.writer)
      return { store, flush: () => store.flush() }
    }))

    delayedStoreSuite(keyspaceHarness(backend, (keyspace) => {
      const store = new LevelDelayedStore(keyspace.sublevel('delayed'), keyspace.writer)
      return { store, flush: () => store.idle() }
    }))

    scheduleStoreSuite(keyspaceHarness(backend, (keyspace) => {
      const delayed = new LevelDelayedStore(keyspace.sublevel('delayed'), keyspace.writer)
      const schedules = new LevelScheduleStore(keyspace.sublevel('schedules'), delayed)
      return { store: { schedules, delayed }, flush: () => delayed.idle() }
    }))

    idempotencyStoreSuite(keyspaceHarness(backend, (keyspace) => {
      const store = new LevelIdempotencyStore(keyspace.sublevel('idempotency-keys'), keyspace.writer)
      return { store, flush: () => store.flush() }
    }))

    journalStoreSuite(keyspaceHarness(backend, (keyspace) => {
      // As the broker builds it: sharing the Aedes persistence's write batcher.
      const { persistence, journal } = createSessionStores(keyspace)
      return { store: journal, flush: () => persistence.flush() }
    }))
  })
}
