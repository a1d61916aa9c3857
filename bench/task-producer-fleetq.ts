// The fleetq producer process of `npm run bench:tasks`: submits thumbnail
// tasks through the client library and awaits each one's result, which the
// broker routes back to this client (docs/tasks.md).
import { connect, type TaskHandle } from '../client/index.js'
import { configFromArgv, exitWithParent, type ProducerConfig } from './task-ipc.js'
import { runProducer, thumbnailPayload, type Submitter } from './task-load.js'

const config = configFromArgv<ProducerConfig>()
const client = await connect(config.endpoint, { clientId: `${config.name}-producer` })
exitWithParent(() => client.close())

function submitter (batch: number): Submitter {
  const track = (handle: TaskHandle, settled: (k: number, ok: boolean) => void, k: number): void => {
    handle.result().then(() => settled(k, true), () => settled(k, false))
  }
  if (batch === 1) {
    return async (first, _count, settled) => {
      track(await client.submit('thumbnail', thumbnailPayload(first)), settled, 0)
    }
  }
  return async (first, count, settled) => {
    const payloads = Array.from({ length: count }, (_, k) => thumbnailPayload(first + k))
    const handles = await client.submitMany('thumbnail', payloads)
    handles.forEach((handle, k) => track(handle, settled, k))
  }
}

await runProducer('fleetq producer', config, submitter(config.plan.batch), () => client.close())
