import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ErrorCodes, FleetqError, TaskValidationError, UnknownTaskTypeError, type ValidationIssue } from '../protocol/errors.js'
import { TaskSchemas } from '../protocol/schema-registry.js'

const thumbnail = { imageUrl: 'https://img.example.com/cat.jpg', width: 320, height: 240, format: 'webp' }
const report = {
  deviceId: 'dev-0042',
  site: 'plant-7',
  reportedAt: '2025-03-01T12:00:00Z',
  readings: [{ sensor: 'temperature', value: 21.5, unit: 'C' }, { sensor: 'battery', value: 87 }]
}

/** Path and keyword of each issue, sorted: what a caller switches on. */
function brief (issues: ValidationIssue[]): Array<[string, string]> {
  return issues.map((i): [string, string] => [i.path, i.keyword]).sort()
}

const tempDirs: string[] = []
async function tempDir (files: Record<string, unknown>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'fleetq-schemas-'))
  tempDirs.push(dir)
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content))
  }
  return dir
}

afterEach(async () => {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

describe('shipped schemas', () => {
  let schemas: TaskSchemas
  beforeAll(async () => { schemas = await TaskSchemas.load() })

  it('loads every task type under schemas/tasks', () => {
    expect(schemas.types()).toEqual(['device-report', 'thumbnail'])
    expect(schemas.has('thumbnail')).toBe(true)
    expect(schemas.has('nope')).toBe(false)
  })

  it('accepts valid payloads', () => {
    expect(schemas.validatePayload('thumbnail', thumbnail)).toEqual([])
    expect(schemas.validatePayload('device-report', report)).toEqual([])
    expect(() => schemas.assertPayload('thumbnail', thumbnail)).not.toThrow()
  })

  it('puts a missing property into the path', () => {
    const issues = schemas.validatePayload('thumbnail', { imageUrl: thumbnail.imageUrl })
    expect(issues).toEqual([
      { path: '/width', message: "must have required property 'width'", keyword: 'required' },
      { path: '/height', message: "must have required property 'height'", keyword: 'required' }
    ])
    const nested = schemas.validatePayload('device-report', { ...report, readings: [{ sensor: 'x' }] })
    expect(brief(nested)).toEqual([['/readings/0/value', 'required']])
  })

  it('reports wrong types at their path', () => {
    const issues = schemas.validatePayload('thumbnail', { ...thumbnail, width: '320', height: 1.5 })
    expect(brief(issues)).toEqual([['/height', 'type'], ['/width', 'type']])
    expect(issues.find((i) => i.path === '/width')?.message).toBe('must be integer')
    expect(brief(schemas.validatePayload('thumbnail', []))).toEqual([['', 'type']])
    expect(brief(schemas.validatePayload('device-report', { ...report, readings: [{ sensor: 'x', value: 'hot' }] })))
      .toEqual([['/readings/0/value', 'type']])
  })

  it('puts an extra property into the path, at any depth', () => {
    const issues = schemas.validatePayload('thumbnail', { ...thumbnail, quality: 90 })
    expect(issues).toEqual([{ path: '/quality', message: 'must NOT have additional properties', keyword: 'additionalProperties' }])
    const nested = schemas.validatePayload('device-report', { ...report, readings: [{ sensor: 'x', value: 1, raw: 'ff' }] })
    expect(brief(nested)).toEqual([['/readings/0/raw', 'additionalProperties']])
  })

  it('escapes / and ~ in property names (RFC 6901)', () => {
    const issues = schemas.validatePayload('thumbnail', { ...thumbnail, 'a/b~c': 1 })
    expect(issues[0]?.path).toBe('/a~1b~0c')
  })

  it('checks formats: uri and date-time', () => {
    expect(schemas.validatePayload('thumbnail', { ...thumbnail, imageUrl: 'not a uri' }))
      .toEqual([{ path: '/imageUrl', message: 'must match format "uri"', keyword: 'format' }])
    expect(brief(schemas.validatePayload('device-report', { ...report, reportedAt: 'yesterday' })))
      .toEqual([['/reportedAt', 'format']])
    expect(brief(schemas.validatePayload('device-report', { ...report, reportedAt: '2025-02-30T25:00:00Z' })))
      .toEqual([['/reportedAt', 'format']])
  })

  it('checks ranges, enums and patterns', () => {
    expect(brief(schemas.validatePayload('thumbnail', { ...thumbnail, width: 0, height: 5000, format: 'gif' })))
      .toEqual([['/format', 'enum'], ['/height', 'maximum'], ['/width', 'minimum']])
    expect(brief(schemas.validatePayload('device-report', { ...report, deviceId: 'has space' })))
      .toEqual([['/deviceId', 'pattern']])
  })

  it('refuses oversize strings and arrays by the schema', () => {
    const issues = schemas.validatePayload('thumbnail', { ...thumbnail, imageUrl: `https://x.example/${'a'.repeat(2100)}` })
    expect(issues).toEqual([{ path: '/imageUrl', message: 'must NOT have more than 2048 characters', keyword: 'maxLength' }])
    const readings = Array.from({ length: 1001 }, (_, i) => ({ sensor: `s${i}`, value: i }))
    expect(brief(schemas.validatePayload('device-report', { ...report, readings }))).toEqual([['/readings', 'maxItems']])
  })

  it('reports every issue at once (allErrors)', () => {
    const issues = schemas.validatePayload('thumbnail', { imageUrl: 'nope', width: -1, extra: true })
    expect(brief(issues)).toEqual([['/extra', 'additionalProperties'], ['/height', 'required'], ['/imageUrl', 'format'], ['/width', 'minimum']])
  })

  it('assertPayload throws TaskValidationError with the issues', () => {
    let error: unknown
    try {
      schemas.assertPayload('thumbnail', { ...thumbnail, width: 'wide' })
    } catch (err) {
      error = err
    }
    expect(error).toBeInstanceOf(TaskValidationError)
    const validation = error as TaskValidationError
    expect(validation.code).toBe(ErrorCodes.PAYLOAD_INVALID)
    expect(validation.taskType).toBe('thumbnail')
    expect(brief(validation.issues)).toEqual([['/width', 'type']])
    expect(validation.message).toContain('/width must be integer')
  })

  it('refuses unknown task types', () => {
    expect(() => schemas.validatePayload('transcode', {})).toThrow(UnknownTaskTypeError)
    expect(() => schemas.assertPayload('transcode', {})).toThrow(expect.objectContaining({ code: ErrorCodes.UNKNOWN_TASK_TYPE }))
  })

  it('validates the envelope', () => {
    const envelope = { id: 'a1', type: 'thumbnail', payload: thumbnail, attempt: 1, maxAttempts: 3, createdAt: new Date().toISOString(), timeoutMs: 1000 }
    expect(schemas.validateEnvelope(envelope)).toEqual([])
    expect(schemas.validateEnvelope({ ...envelope, backoff: { type: 'exponential', delayMs: 100, maxDelayMs: 1000, jitter: 0.2 }, deliveryCount: 2, previousErrors: ['boom'] })).toEqual([])
    const { timeoutMs: _timeoutMs, ...missing } = envelope
    expect(brief(schemas.validateEnvelope({ ...missing, attempt: 0, type: 'Bad/Type', extra: 1, replyTo: 'a/#' })))
      .toEqual([['/attempt', 'minimum'], ['/extra', 'additionalProperties'], ['/replyTo', 'pattern'], ['/timeoutMs', 'required'], ['/type', 'pattern']])
    expect(brief(schemas.validateEnvelope({ ...envelope, backoff: { type: 'linear', delayMs: 1, jitter: 2 } })))
      .toEqual([['/backoff/jitter', 'maximum'], ['/backoff/type', 'enum']])
  })
})

describe('options', () => {
  it('lets unknown types through when allowed', async () => {
    const schemas = await TaskSchemas.load({ allowUnknownTypes: true })
    expect(schemas.validatePayload('transcode', { anything: true })).toEqual([])
    // Known types are still checked.
    expect(brief(schemas.validatePayload('thumbnail', {}))).toHaveLength(3)
  })

  it('refuses a payload larger than maxPayloadBytes as JSON, with keyword maxBytes', async () => {
    const schemas = await TaskSchemas.load({ maxPayloadBytes: 100 })
    const payload = { ...thumbnail, imageUrl: `https://x.example/${'a'.repeat(100)}` }
    const issues = schemas.validatePayload('thumbnail', payload)
    expect(issues).toHaveLength(1)
    expect(issues[0]).toMatchObject({ path: '', keyword: 'maxBytes' })
    expect(issues[0]?.message).toContain(`got ${Buffer.byteLength(JSON.stringify(payload))}`)
    expect(schemas.validatePayload('thumbnail', thumbnail)).toEqual([])
  })

  it('counts bytes, not characters', async () => {
    const schemas = await TaskSchemas.load({ maxPayloadBytes: 200, dir: await tempDir({ 'note.schema.json': { $id: 'urn:test:note', type: 'object' } }) })
    // 70 characters, 210 bytes in UTF-8.
    expect(brief(schemas.validatePayload('note', { text: '€'.repeat(70) }))).toEqual([['', 'maxBytes']])
  })

  it('defaults to 256 KiB', async () => {
    const schemas = await TaskSchemas.load()
    expect(schemas.maxPayloadBytes).toBe(256 * 1024)
  })

  it('fails early on a nonsense maxPayloadBytes', async () => {
    await expect(TaskSchemas.load({ maxPayloadBytes: 0 })).rejects.toMatchObject({ code: ErrorCodes.SCHEMA_OPTIONS_INVALID, message: expect.stringMatching(/maxPayloadBytes/) })
  })
})

describe('user schemas', () => {
  const resize = {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://example.com/schemas/resize.schema.json',
    type: 'object',
    additionalProperties: false,
    required: ['scale'],
    properties: { scale: { type: 'number', exclusiveMinimum: 0 } }
  }

  it('registers every *.schema.json of a directory, named after the file', async () => {
    const dir = await tempDir({ 'resize.schema.json': resize, 'README.md': '# not a schema', 'notes.json': '{}' })
    const schemas = await TaskSchemas.load({ dir })
    expect(schemas.types()).toEqual(['device-report', 'resize', 'thumbnail'])
    expect(schemas.validatePayload('resize', { scale: 2 })).toEqual([])
    expect(brief(schemas.validatePayload('resize', { scale: 0, x: 1 }))).toEqual([['/scale', 'exclusiveMinimum'], ['/x', 'additionalProperties']])
  })

  it('registers a schema from an object', async () => {
    const schemas = await TaskSchemas.load()
    schemas.register('resize', resize)
    expect(schemas.has('resize')).toBe(true)
    expect(brief(schemas.validatePayload('resize', {}))).toEqual([['/scale', 'required']])
  })

  it('refuses a schema without $id, naming the file', async () => {
    const { $id: _id, ...noId } = resize
    const dir = await tempDir({ 'resize.schema.json': noId })
    const error = await TaskSchemas.load({ dir }).catch((err: unknown) => err)
    expect(error).toBeInstanceOf(FleetqError)
    expect(error).toMatchObject({ code: ErrorCodes.SCHEMA_INVALID })
    expect((error as Error).message).toContain(join(dir, 'resize.schema.json'))
    expect((error as Error).message).toContain('no $id')

    const schemas = await TaskSchemas.load()
    expect(() => schemas.register('resize', noId)).toThrow(expect.objectContaining({ code: ErrorCodes.SCHEMA_INVALID }))
  })

  it('refuses a schema that does not compile, with ajv\'s message, and takes the fixed one after', async () => {
    const schemas = await TaskSchemas.load()
    // strict mode: an unknown keyword is a typo, not an extension
    expect(() => schemas.register('resize', { ...resize, properties: { scale: { type: 'number', minimun: 0 } } }))
      .toThrow(/schema of "resize": strict mode: unknown keyword: "minimun"/)
    expect(() => schemas.register('bad', { $id: 'urn:test:bad', type: 'objekt' })).toThrow(expect.objectContaining({ code: ErrorCodes.SCHEMA_INVALID }))
    expect(schemas.has('resize')).toBe(false)
    schemas.register('resize', resize)
    expect(schemas.has('resize')).toBe(true)
  })

  it('refuses a file that is not JSON, naming it', async () => {
    const dir = await tempDir({ 'broken.schema.json': '{ "type": ' })
    await expect(TaskSchemas.load({ dir })).rejects.toThrow(/broken\.schema\.json: not valid JSON/)
  })

  it('refuses a type that is taken, badly named, or an $id used twice', async () => {
    const schemas = await TaskSchemas.load()
    expect(() => schemas.register('thumbnail', { $id: 'urn:test:t2', type: 'object' })).toThrow(/already registered/)
    expect(() => schemas.register('Resize', { $id: 'urn:test:r', type: 'object' })).toThrow(/must match/)
    expect(() => schemas.register('a/b', { $id: 'urn:test:ab', type: 'object' })).toThrow(/must match/)
    expect(() => schemas.register('resize2', { $id: 'https://fleetq.dev/schemas/tasks/thumbnail.schema.json', type: 'object' })).toThrow(/already used/)
    const dir = await tempDir({ 'thumbnail.schema.json': { $id: 'urn:test:thumb', type: 'object' } })
    await expect(TaskSchemas.load({ dir })).rejects.toThrow(/thumbnail\.schema\.json: task type "thumbnail" is already registered/)
  })

  it('refuses a directory that cannot be read', async () => {
    await expect(TaskSchemas.load({ dir: join(tmpdir(), 'fleetq-no-such-dir') })).rejects
      .toThrow(expect.objectContaining({ code: ErrorCodes.SCHEMA_INVALID }))
  })
})
