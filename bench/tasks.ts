// Tasks end to end: submit → worker → result(), through fleetq's task gate,
// its shared-subscription queue and the client library.
//   npm run bench:tasks [-- --url mqtt://host:port --pid P --tasks 4000 --workers 4 --concurrency 8 --window 200]
import { parseArgs } from 'node:util'
import { connect, createWorker, type Client, type TaskHandle, type Worker } from '../client/index.js'
import { externalTarget, startFleetq, type BenchTarget } from './brokers.js'
import { LatencyRecorder, readCpuSeconds, readRssBytes } from './stats.js'

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    pid: { type: 'string' },
    tasks: { type: 'string', default: '4000' },
    workers: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '8' },
    window: { type: 'string', default: '200' },
    timeout: { type: 'string', default: '120' }
  }
})
const positive = (name: string, text: string | undefined): number => {
  const n = Number(text)
  if (!Number.isInteger(n) || n < 1) { console.error(`--${name} must be a positive integer`); process.exit(2) }
  return n
}
const total = positive('tasks', values.tasks)
const workerCount = positive('workers', values.workers)
const concurrency = positive('concurrency', values.concurrency)
const window = positive('window', values.window)
const timeoutMs = positive('timeout', values.timeout) * 1000

const target: BenchTarget = values.url !== undefined
  ? externalTarget(values.url, values.pid === undefined ? null : Number(values.pid))
  : await startFleetq('level')
const clients: Client[] = []
const workers: Worker[] = []
try {
  const producer = await connect(target.url, { clientId: `bench-producer-${process.pid}` })
  clients.push(producer)
  for (let w = 0; w < workerCount; w++) {
    const client = await connect(target.url, { clientId: `bench-worker-${process.pid}-${w}` })
    clients.push(client)
    // The work itself is trivial: this measures the queue, not the handler.
    workers.push(await createWorker(client, 'thumbnail', async (payload) => ({ w: payload.width }), { concurrency }))
  }
  const cpuBefore = target.pid === null ? null : readCpuSeconds(target.pid)
  const latency = new LatencyRecorder()
  const started = performance.now()
  const deadline = Date.now() + timeoutMs
  let completed = 0
  let failed = 0
  const inflight = new Set<Promise<void>>()
  for (let i = 0; i < total; i++) {
    if (Date.now() > deadline) break
    const t0 = performance.now()
    // Submits are not awaited one by one: up to `window` tasks are between
    // submit() and their result at once, as many producers would have.
    const p: Promise<void> = producer.submit('thumbnail', { imageUrl: `https://bench.example/${i}.png`, width: 64, height: 64 })
      .then((handle: TaskHandle) => handle.result())
      .then(() => { completed++; latency.recordMs(performance.now() - t0) }, () => { failed++ })
      .finally(() => inflight.delete(p))
    inflight.add(p)
    if (inflight.size >= window) await Promise.race(inflight)
  }
  await Promise.race([Promise.all(inflight), new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref())])
  const seconds = (performance.now() - started) / 1000
  const cpuAfter = target.pid === null ? null : readCpuSeconds(target.pid)
  const rss = target.pid === null ? null : readRssBytes(target.pid)
  const fmt = (ms: number | null): string => (ms === null ? '-' : ms.toFixed(1))
  console.log(`tasks: ${total} submitted, ${completed} completed, ${failed} failed, ${total - completed - failed} unfinished`)
  console.log(`setup: ${workerCount} workers x concurrency ${concurrency}, ${window} tasks in flight, broker ${target.name} (${target.url})`)
  console.log('| tasks/s | p50 ms | p99 ms | broker RSS MB | broker CPU µs/task |')
  console.log('| ------: | -----: | -----: | ------------: | -----------------: |')
  const cpu = cpuBefore === null || cpuAfter === null || completed === 0 ? '-' : Math.round((cpuAfter - cpuBefore) * 1e6 / completed).toString()
  console.log(`| ${Math.round(completed / seconds)} | ${fmt(latency.percentileMs(50))} | ${fmt(latency.percentileMs(99))} | ${rss === null ? '-' : (rss / 2 ** 20).toFixed(1)} | ${cpu} |`)
  process.exitCode = completed === total ? 0 : 1
} finally {
  await Promise.allSettled(workers.map((w) => w.close({ timeoutMs: 5000 })))
  await Promise.allSettled(clients.map((c) => c.close()))
  await target.close()
}
