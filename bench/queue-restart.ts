// Restart time with a big stored queue (docs/durability.md, "Restart time").
//   fill:  npx tsx bench/queue-restart.ts fill <dir> <N>   (N messages queued for one client)
//   time:  npx tsx bench/queue-restart.ts time <dir>       (persistence setup, queues read, createBroker to listening)
import { Keyspace } from '../broker/persistence/keyspace.js'
import { createSessionStores } from '../broker/persistence/open-persistence.js'
import { createBroker } from '../broker/index.js'
const [mode, dir, n] = process.argv.slice(2) as [string, string, string]
if (mode === 'fill') {
  const keyspace = await Keyspace.open({ location: dir })
  const { persistence } = createSessionStores(keyspace, { maxQueuedPerClient: 0 })
  await persistence.setup({ id: 'fill' })
  await persistence.addSubscriptions({ id: 'sub' }, [{ topic: 'soak/#', qos: 1 }])
  const N = Number(n)
  const payload = Buffer.alloc(64, 120)
  for (let i = 0; i < N; i += 5000) {
    const all = []
    for (let j = i; j < Math.min(N, i + 5000); j++) all.push(persistence.outgoingEnqueueCombi([{ clientId: 'sub' }], { cmd: 'publish', topic: 'soak/p1', payload, qos: 1, retain: false, dup: false, brokerId: 'fill', brokerCounter: j + 1 }))
    await Promise.all(all)
  }
  await persistence.destroy()
  console.log('filled', N)
} else {
  let t = performance.now()
  const keyspace = await Keyspace.open({ location: dir })
  const { persistence } = createSessionStores(keyspace)
  await persistence.setup({ id: 'x' })
  const setupMs = performance.now() - t
  await (persistence as { loaded?: () => Promise<void> }).loaded?.()
  const loadedMs = performance.now() - t
  const queued = persistence.queueSizes().get('sub')
  await persistence.destroy()
  t = performance.now()
  const broker = await createBroker({ port: 0, dataDir: dir, logLevel: 'silent', maxQueuedPerClient: 0 })
  const startMs = performance.now() - t
  const rss = Math.round(process.memoryUsage().rss / 1e6)
  await broker.close()
  console.log(JSON.stringify({ queued, setupMs: Math.round(setupMs), loadedMs: Math.round(loadedMs), createBrokerMs: Math.round(startMs), rssMB: rss }))
}
