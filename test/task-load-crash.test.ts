import { afterEach, describe, expect, it } from 'vitest'
import { connect, type Client } from '../client/client.js'
import { startBrokerProcess } from './helpers/broker-process.js'
import { spawnNodeChild, type NodeChild } from './helpers/child-process.js'
import { testSchemas } from './helpers/task-schemas.js'
import { waitUntil } from './helpers/wait.js'

const workerScript = new URL('./helpers/completing-worker-child.ts', import.meta.url)

/** The benchmark's shape (docs/benchmarks.md, "Tasks end to end"): worker processes × concurrency 8. */
const WORKERS = 4
const CONCURRENCY = 8
const BATCH = 100
const BATCHES_IN_FLIGHT = 4

async function startWorkers (url: string, count: number): Promise<NodeChild[]> {
  const children = Array.from({ length: count }, () => spawnNodeChild(workerScript, [url, String(CONCURRENCY)]))
  await Promise.all(children.map((c) => c.waitForLine((l) => l === 'ready', 'a worker to subscribe')))
  return children
}

const doneIds = (children: NodeChild[]): Set<string> =>
  new Set(children.flatMap((c) => c.lines.filter((l) => l.startsWith('done ')).map((l) => l.slice(5))))

describe('kill -9 of the broker under full task load', () => {
  const clients: Client[] = []
  const children: NodeChild[] = []
  afterEach(async () => {
    await Promise.all(children.splice(0).map((c) => c.kill('SIGKILL')))
    await Promise.all(clients.splice(0).map((c) => c.close().catch(() => undefined)))
  })

  it('loses no acknowledged task: submissions at full speed, 4 worker processes × 8 completing, SIGKILL mid-stream', async () => {
    const broker = await startBrokerProcess()
    const before = await startWorkers(broker.url, WORKERS)
    children.push(...before)

    const producer = await connect(broker.url, { schemas: await testSchemas(), reconnectPeriod: 0 })
    clients.push(producer)
    producer.on('error', () => undefined)

    // submitMany resolves once the broker acknowledged every task of the batch
    // (PUBACK: stored, docs/durability.md); only those count as acknowledged.
    const acknowledged = new Set<string>()
    let n = 0
    let stop = false
    const batch = (): Array<{ imageUrl: string, width: number, height: number }> =>
      Array.from({ length: BATCH }, () => { n++; return { imageUrl: `https://example.com/${n}.png`, width: n, height: 1 } })
    const lane = async (): Promise<void> => {
      while (!stop) {
        const handles = await producer.submitMany('thumbnail', batch())
        for (const h of handles) acknowledged.add(h.id)
      }
    }
    const lanes = Array.from({ length: BATCHES_IN_FLIGHT }, async () => { await lane().catch(() => undefined) })

    // Kill while tasks are being submitted, queued, in flight and completed at once.
    await waitUntil(() => acknowledged.size >= 4000 && doneIds(before).size >= 1000,
      () => `4,000 acknowledged and 1,000 done before the kill (${acknowledged.size} acknowledged, ${doneIds(before).size} done)`, 60_000)
    await broker.kill()
    stop = true
    const ackedAtKill = new Set(acknowledged)
    await Promise.all(before.map((c) => c.exited))

    await broker.restart()
    const after = await startWorkers(broker.url, 2)
    children.push(...after)
    const done = (): Set<string> => new Set([...doneIds(before), ...doneIds(after)])
    const missing = (): string[] => [...ackedAtKill].filter((id) => !done().has(id))
    await waitUntil(() => missing().length === 0,
      () => `every acknowledged task done (missing ${missing().length} of ${ackedAtKill.size})`, 60_000)
    expect(missing()).toEqual([])
    // The kill left tasks waiting: the new workers took some of them.
    expect(doneIds(after).size).toBeGreaterThan(0)
    void lanes
  }, 120_000)
})
