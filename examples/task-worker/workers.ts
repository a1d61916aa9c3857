import { createWorker, type Client, type Worker } from '../../client/index.js'

/** Image URLs the "renderer" fails on the first time (a flaky upstream). */
const flaky = new Set<string>()

/**
 * A thumbnail worker. A URL containing `flaky` fails on its first attempt and
 * succeeds on the retry; everything else succeeds at once.
 */
export async function startThumbnailWorker (client: Client, name: string, log: (line: string) => void): Promise<Worker> {
  return await createWorker(client, 'thumbnail', async (payload, task) => {
    if (payload.imageUrl.includes('flaky') && !flaky.has(payload.imageUrl)) {
      flaky.add(payload.imageUrl)
      log(`${name}: ${task.id.slice(0, 8)} attempt ${task.attempt} failed (upstream timeout)`)
      throw new Error('upstream timeout')
    }
    log(`${name}: ${task.id.slice(0, 8)} attempt ${task.attempt} rendered ${payload.width}x${payload.height}`)
    return { url: `${payload.imageUrl}?w=${payload.width}&h=${payload.height}`, worker: name }
  }, { concurrency: 2, group: 'thumbnail' })
}
