import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import { ConfigError, ErrorCodes, FleetqError } from '../broker/index.js'
import { ClientErrorCodes } from '../client/index.js'

describe('error codes', () => {
  it('every code is documented in docs/errors.md, and nothing else is', async () => {
    const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8')
    const documented = [...doc.matchAll(/`(FLEETQ_[A-Z_]+)`/g)].map((m) => m[1])
    expect(new Set(documented)).toEqual(new Set([...Object.values(ErrorCodes), ...Object.values(ClientErrorCodes)]))
  })

  it('errors carry a stable code, their cause and the key at fault', () => {
    const cause = new Error('boom')
    const err = new ConfigError('port', 'must be an integer', { cause })
    expect(err).toBeInstanceOf(FleetqError)
    expect(err).toMatchObject({ code: 'FLEETQ_CONFIG_INVALID', key: 'port', cause, name: 'ConfigError' })
    expect(err.message).toBe('invalid config "port": must be an integer')
  })
})
