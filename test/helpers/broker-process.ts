import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const childScript = fileURLToPath(new URL('./broker-child.ts', import.meta.url))

export interface BrokerProcess {
  child: ChildProcess
  port: number
  url: string
  /** SIGKILL: no shutdown code runs, as in a power cut of the process. */
  kill9 (): Promise<void>
  /** SIGTERM and wait for a clean exit. */
  stop (): Promise<void>
}

/** Starts a broker in a child process on `dataDir` and waits until it listens. */
export async function spawnBroker (dataDir: string, port = 0): Promise<BrokerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', childScript, dataDir, String(port)], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const lines = createInterface({ input: child.stdout! })
  const exited = once(child, 'exit')
  const ready = (async () => {
    for await (const line of lines) {
      const parsed = JSON.parse(line) as { port: number }
      return parsed.port
    }
    throw new Error('broker child closed stdout before listening')
  })()
  const boundPort = await Promise.race([
    ready,
    exited.then(([code]) => { throw new Error(`broker child exited with ${String(code)} before listening:\n${stderr}`) })
  ])
  const exitedOnce = exited.then(() => undefined)
  return {
    child,
    port: boundPort,
    url: `mqtt://127.0.0.1:${boundPort}`,
    async kill9 () {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exitedOnce
    },
    async stop () {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exitedOnce
    }
  }
}
