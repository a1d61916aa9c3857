import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import * as broker from '../broker/index.js'
import * as client from '../client/index.js'

const { ConfigError, ErrorCodes, FleetqError } = broker

describe('error codes', () => {
  it('every code is documented in docs/errors.md, and nothing else is', async () => {
    const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8')
    const documented = [...doc.matchAll(/`(FLEETQ_[A-Z_]+)`/g)].map((m) => m[1])
    expect(new Set(documented)).toEqual(new Set(Object.values(ErrorCodes)))
  })

  it('both entry points export the one catalogue and the same classes', () => {
    expect(client.ErrorCodes).toBe(broker.ErrorCodes)
    expect(client.FleetqError).toBe(broker.FleetqError)
    expect(client.ScheduleError).toBe(broker.ScheduleError)
    expect(new client.TaskFailedError('t1', 'no', 3)).toBeInstanceOf(broker.FleetqError)
  })

  it('errors carry a stable code, their cause and the key at fault', () => {
    const cause = new Error('boom')
    const err = new ConfigError('port', 'must be an integer', { cause })
    expect(err).toBeInstanceOf(FleetqError)
    expect(err).toMatchObject({ code: 'FLEETQ_CONFIG_INVALID', key: 'port', cause, name: 'ConfigError' })
    expect(err.message).toBe('invalid config "port": must be an integer')
  })
})
