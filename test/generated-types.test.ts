import { execFile } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import ts from 'typescript'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SETTINGS, settingSchema } from '../broker/config.js'
import { configDefaults, type BrokerConfig, type ScheduleConfig } from '../broker/generated/config-types.js'
import { brokerDefaults } from '../broker/index.js'
import type { BrokerOptions } from '../broker/options.js'
import { groupDefaults } from '../broker/shared/group-options.js'
import { taskGateDefaults } from '../broker/tasks/task-gate.js'
import { DEFAULT_MAX_DELAY_SECONDS } from '../protocol/delayed-topic.js'
import { envelopeDefaults } from '../protocol/envelope.js'
import type { TaskEnvelope, TaskPayloads, TaskType, ThumbnailPayload } from '../protocol/generated/task-types.js'
import type { ScheduleInput } from '../protocol/schedules.js'
import { taskSchemasDefaults, TaskSchemas } from '../protocol/schema-registry.js'
import { DEAD_LETTER_PREFIX, DUPLICATES_PREFIX, TASKS_PREFIX } from '../protocol/topics.js'
import { configPaths, renderConfigTypes } from '../scripts/config-types.js'
import { paths, pascalCase, renderTaskTypes, renderUserTaskTypes } from '../scripts/task-types.js'

const repo = (path: string): string => fileURLToPath(new URL(`../${path}`, import.meta.url))

describe('protocol/generated/task-types.ts', () => {
  // As Fastify checks its generated validators: the file must be what the
  // generator makes from schemas/ now.
  it('is up to date with schemas/ (run npm run gen:types)', async () => {
    const expected = await renderTaskTypes()
    const actual = await readFile(paths.output, 'utf8')
    expect(actual, 'protocol/generated/task-types.ts is stale: run npm run gen:types').toBe(expected)
  })

  it('has one entry in TaskPayloads per shipped task type', async () => {
    const schemas = await TaskSchemas.load()
    const source = await readFile(paths.output, 'utf8')
    for (const type of schemas.types()) {
      expect(source).toContain(`'${type}': ${pascalCase(type)}Payload`)
    }
  })

  it('types match the schemas', () => {
    // Compile-time checks: tsc fails this file if the types drift.
    const payload: ThumbnailPayload = { imageUrl: 'https://x.example/a.png', width: 1, height: 1, format: 'png' }
    const byType: TaskPayloads['thumbnail'] = payload
    const type: TaskType = 'device-report'
    const envelope: TaskEnvelope = { id: 'x', type, payload: byType, attempt: 1, maxAttempts: 1, createdAt: '', timeoutMs: 1 }
    expect(envelope.payload).toBe(payload)
    expect(pascalCase('image.resize_v2')).toBe('ImageResizeV2')
  })
})

describe('broker/generated/config-types.ts', () => {
  it('is up to date with schemas/broker-config.schema.json (run npm run gen:config)', async () => {
    const expected = await renderConfigTypes()
    const actual = await readFile(configPaths.output, 'utf8')
    expect(actual, 'broker/generated/config-types.ts is stale: run npm run gen:config').toBe(expected)
  })

  it('brokerDefaults (exported by fleetq) are the schema\'s defaults', () => {
    expect(brokerDefaults).toBe(configDefaults)
    expect(brokerDefaults).toMatchObject({ port: 1883, host: '127.0.0.1', dataDir: './data', persistence: 'level', maxQueuedPerClient: 100_000, logLevel: 'info' })
  })

  // The defaults that are also the wire contract (topics, envelope, payload
  // bound) live in protocol/, which the broker's config cannot feed; the
  // schema states them for editors and docs, and this keeps the two equal.
  it('agrees with the defaults the services and protocol/ use on their own', () => {
    expect(groupDefaults).toEqual(configDefaults.shared.defaults)
    const { schemasDir: _dir, includeExamples: _examples, allowUnknownTypes, maxPayloadBytes, ...gate } = configDefaults.tasks as typeof configDefaults.tasks & { schemasDir?: string }
    expect(taskGateDefaults).toEqual(gate)
    expect(taskSchemasDefaults).toEqual({ allowUnknownTypes, maxPayloadBytes })
    expect({ maxAttempts: gate.wrapMaxAttempts, timeoutMs: gate.wrapTimeoutMs }).toEqual({ maxAttempts: envelopeDefaults.maxAttempts, timeoutMs: envelopeDefaults.timeoutMs })
    expect([gate.topicPrefix, gate.deadLetterPrefix, gate.duplicatePrefix]).toEqual([TASKS_PREFIX, DEAD_LETTER_PREFIX, DUPLICATES_PREFIX])
    expect(configDefaults.delayed.maxDelaySeconds).toBe(DEFAULT_MAX_DELAY_SECONDS)
  })

  it('types the library options and the wire schedules alike', () => {
    // Compile-time checks: tsc fails this file if they drift apart.
    const schedule: ScheduleConfig = { name: 'n', cron: '* * * * *', qos: 1, catchUp: 'last', payload: { any: ['json'] } }
    const input: ScheduleInput = schedule
    const back: ScheduleConfig = input
    const options: BrokerOptions = { schedules: [back], shared: { groups: { g: { strategy: 'hash' } } }, tasks: { schemasDir: 'x' } }
    const fromFile: BrokerConfig = options
    expect(fromFile.schedules).toEqual([schedule])
  })

  it('docs/configuration.md names every setting, its flag, variable and default', async () => {
    const doc = await readFile(repo('docs/configuration.md'), 'utf8')
    for (const setting of SETTINGS) {
      expect(doc, setting.key).toContain(`\`${setting.key}\``)
      expect(doc, setting.key).toContain(`\`${setting.flag}`)
      expect(doc, setting.key).toContain(`\`${setting.env}\``)
    }
    // Every key of the schema, by its dotted path, with its default.
    const walk = (prefix: string, node: ReturnType<typeof settingSchema>): void => {
      for (const key of Object.keys(node?.properties ?? {})) {
        if (key === '$schema') continue
        const path = prefix === '' ? key : `${prefix}.${key}`
        expect(doc, path).toContain(`\`${path}\``)
        const child = settingSchema(path)
        if (child?.type === 'object' && child.properties !== undefined) walk(path, child)
      }
    }
    walk('', settingSchema(''))
    walk('shared.groups.{name}', settingSchema('shared.defaults'))
    // Each table row of a key with a default shows that default.
    const leaves = (prefix: string, value: unknown): Array<[string, unknown]> =>
      value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0
        ? Object.entries(value).flatMap(([k, v]) => leaves(prefix === '' ? k : `${prefix}.${k}`, v))
        : [[prefix, value]]
    for (const [path, value] of leaves('', configDefaults)) {
      const rows = doc.split('\n').filter((line) => line.startsWith(`| \`${path}\``))
      expect(rows.length, `a table row for ${path}`).toBeGreaterThan(0)
      const shown = typeof value === 'string' ? value : JSON.stringify(value)
      for (const row of rows) expect(row, path).toContain(`\`${shown}\``)
    }
  })
})

describe('user task types: npm run gen:types -- --dir <folder> --out <file>', () => {
  let root: string
  beforeAll(async () => { root = await mkdtemp(join(tmpdir(), 'fleetq-gen-types-')) })
  afterAll(async () => { await rm(root, { recursive: true, force: true }) })

  const example = {
    dir: repo('examples/user-task-type/schemas'),
    out: repo('examples/user-task-type/generated/task-types.ts'),
    module: '../../../client/index.js'
  }

  it('examples/user-task-type/generated/task-types.ts is up to date', async () => {
    const expected = await renderUserTaskTypes(example)
    const actual = await readFile(example.out, 'utf8')
    expect(actual, `stale: run npm run gen:types -- --dir examples/user-task-type/schemas --out examples/user-task-type/generated/task-types.ts --module ${example.module}`).toBe(expected)
  })

  it('writes a file that typechecks and types submit() and createWorker() for the folder\'s types', { timeout: 120_000 }, async () => {
    const schemas = join(root, 'schemas')
    await mkdir(schemas)
    await writeFile(join(schemas, 'valve-test.schema.json'), JSON.stringify({
      $id: 'urn:example:valve-test',
      type: 'object',
      additionalProperties: false,
      required: ['valve', 'pressureBar'],
      properties: { valve: { type: 'string' }, pressureBar: { type: 'number' }, mode: { enum: ['quick', 'full'] } }
    }))
    // An ESM project, as fleetq's own.
    await writeFile(join(root, 'package.json'), JSON.stringify({ type: 'module' }))
    const out = join(root, 'types', 'task-types.ts')
    const client = relative(dirname(out), repo('client/index.js')).split('\\').join('/')
    // The real command, as a user runs it.
    await promisify(execFile)(process.execPath, ['--import', 'tsx', repo('scripts/generate-task-types.ts'), '--dir', schemas, '--out', out, '--module', client], { cwd: repo('') })
    const source = await readFile(out, 'utf8')
    expect(source).toContain('export interface ValveTestPayload {')
    expect(source).toContain("'valve-test': ValveTestPayload")
    expect(source).toMatch(/mode\?: 'quick' \| 'full'/)

    // A program using it: right payloads compile, wrong ones do not.
    const consumer = join(dirname(out), 'use.ts')
    await writeFile(consumer, [
      `import { connect, createWorker } from '${client}'`,
      "import type { ValveTestPayload } from './task-types.js'",
      'const c = await connect(\'mqtt://localhost\')',
      "await c.submit('valve-test', { valve: 'v1', pressureBar: 2.5, mode: 'quick' })",
      "await createWorker(c, 'valve-test', (p) => { const typed: ValveTestPayload = p; return typed.pressureBar * 2 })",
      '// @ts-expect-error pressureBar must be a number',
      "await c.submit('valve-test', { valve: 'v1', pressureBar: 'high' })",
      ''
    ].join('\n'))
    const config = ts.parseJsonConfigFileContent(ts.readConfigFile(repo('tsconfig.json'), (f) => ts.sys.readFile(f)).config, ts.sys, repo(''))
    const program = ts.createProgram([out, consumer], { ...config.options, noEmit: true, rootDir: undefined })
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))
    expect(diagnostics).toEqual([])
  })

  it('refuses a folder the broker would refuse, with the broker\'s message', async () => {
    const bad = join(root, 'bad')
    await mkdir(bad)
    await writeFile(join(bad, 'x.schema.json'), '{ nope')
    await expect(renderUserTaskTypes({ dir: bad, out: join(root, 'x.ts') })).rejects.toMatchObject({ code: 'FLEETQ_SCHEMA_INVALID', message: expect.stringMatching(/x\.schema\.json: not valid JSON/) })
  })
})
