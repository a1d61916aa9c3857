import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import type { MqttClient } from 'mqtt'
import { startBroker, type TestBroker } from './helpers/start-broker.js'
import { connectCollecting, type Received } from './helpers/connect.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

const run = promisify(execFile)

// The broker is the trust boundary: devices publish tasks with plain MQTT
// clients (here Debian's mosquitto_pub), not with our library.
describe('task gate, end to end through the broker', () => {
  let b: TestBroker | undefined
  const clients: MqttClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    await b?.close()
    b = undefined
  })

  async function subscriber (clientId: string, filter: string): Promise<Received[]> {
    const s = await connectCollecting(b!.url, { clientId })
    clients.push(s.client)
    await s.client.subscribeAsync(filter, { qos: 1 })
    return s.received
  }

  const mosquittoPub = async (topic: string, message: string): Promise<void> => {
    await run('/usr/bin/mosquitto_pub', ['-h', '127.0.0.1', '-p', String(b!.port), '-q', '1', '-i', 'device-42', '-t', topic, '-m', message])
  }

  it('wraps a valid bare payload in an envelope; invalid payloads never reach a worker and wait in the dead letters', async () => {
    b = await startBroker()
    const worker = await subscriber('worker', '$share/thumbnails/tasks/thumbnail')

    await mosquittoPub('tasks/thumbnail', JSON.stringify({ imageUrl: 'https://example.com/a.png', width: 64, height: 64 }))
    const invalid = [
      JSON.stringify({ imageUrl: 'https://example.com/a.png', width: 64 }), // missing height
      JSON.stringify({ imageUrl: 'https://example.com/a.png', width: 'big', height: 64 }), // wrong type
      JSON.stringify({ imageUrl: 'https://example.com/a.png', width: 64, height: 64, colour: 'red' }), // extra field
      JSON.stringify({ imageUrl: 'not a url', width: 64, height: 64 }), // bad format
      'not json at all'
    ]
    for (const message of invalid) await mosquittoPub('tasks/thumbnail', message)

    await waitUntil(() => worker.length >= 1, 'the valid task at the worker')
    await expectNothingFor(400, () => worker.length > 1, 'an invalid task reached the worker')
    const envelope = JSON.parse(worker[0]!.payload) as Record<string, unknown>
    expect(envelope).toMatchObject({ type: 'thumbnail', attempt: 1, producer: 'device-42', payload: { width: 64, height: 64 } })
    expect(typeof envelope['id']).toBe('string')

    // nobody was subscribed to the dead letters: the broker kept them
    await waitUntil(() => b!.broker.stats().tasks.invalid === 5, 'five invalid submissions counted')
    const dead = await subscriber('auditor', '$share/dead-letters/$fleetq/dead/+')
    await waitUntil(() => dead.length === 5, () => `five dead letters (got ${dead.length})`)
    const records = dead.map((m) => JSON.parse(m.payload) as { clientId: string, taskType: string, issues: Array<{ path: string, keyword: string }> })
    expect(records.every((r) => r.clientId === 'device-42' && r.taskType === 'thumbnail')).toBe(true)
    expect(records.map((r) => r.issues.map((i) => `${i.keyword} ${i.path}`).join(','))).toEqual([
      'required /height', 'type /width', 'additionalProperties /colour', 'format /imageUrl', expect.stringContaining('json')
    ])
  })

  it('accepts an idempotency key once within the window', async () => {
    b = await startBroker()
    const worker = await subscriber('worker', '$share/thumbnails/tasks/thumbnail')
    const envelope = (id: string): string => JSON.stringify({
      id, type: 'thumbnail', payload: { imageUrl: 'https://example.com/b.png', width: 8, height: 8 },
      attempt: 1, maxAttempts: 3, createdAt: new Date().toISOString(), timeoutMs: 60000, idempotencyKey: 'order-1'
    })
    await mosquittoPub('tasks/thumbnail', envelope('first'))
    await mosquittoPub('tasks/thumbnail', envelope('second'))
    await waitUntil(() => worker.length >= 1, 'the first submission')
    await expectNothingFor(400, () => worker.length > 1, 'the duplicate reached the worker')
    expect(JSON.parse(worker[0]!.payload)).toMatchObject({ id: 'first' })
    expect(b.broker.stats().tasks.duplicates).toBe(1)
  })
})
