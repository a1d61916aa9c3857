import { onTestFinished } from 'vitest'
import { spawnNodeChild, type NodeChild } from './child-process.js'

const childScript = new URL('./worker-child.ts', import.meta.url)

export interface WorkerProcess {
  child: NodeChild
  /** Ids of the tasks the child has taken, in order ("started" lines). */
  startedIds (): string[]
  /** SIGKILL mid-task, and wait for the exit. */
  kill (): Promise<void>
}

/**
 * A `thumbnail` worker in a child process whose handler never finishes,
 * subscribed when this resolves: for tests that kill a worker holding tasks.
 * Killed when the test ends, if the test did not.
 */
export async function startWorkerProcess (url: string, options: { concurrency?: number } = {}): Promise<WorkerProcess> {
  const child = spawnNodeChild(childScript, [url, String(options.concurrency ?? 1)])
  onTestFinished(async () => { await child.kill('SIGKILL') })
  await child.waitForLine((l) => l === 'ready', 'the child worker to subscribe')
  return {
    child,
    startedIds: () => child.lines.filter((l) => l.startsWith('started ')).map((l) => l.split(' ')[1]!),
    async kill () { await child.kill('SIGKILL') }
  }
}
