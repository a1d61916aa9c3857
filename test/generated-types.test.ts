import { readFile } from 'node:fs/promises'
import { describe, expect, it } from 'vitest'
import type { TaskEnvelope, TaskPayloads, TaskType, ThumbnailPayload } from '../protocol/generated/task-types.js'
import { TaskSchemas } from '../protocol/schema-registry.js'
import { paths, pascalCase, renderTaskTypes } from '../scripts/task-types.js'

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
