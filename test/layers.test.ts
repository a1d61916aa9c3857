import { ESLint } from 'eslint'
import { describe, expect, it } from 'vitest'

/**
 * The layer rule of eslint.config.js (docs/architecture.md): broker/ and
 * client/ import protocol/ and never each other; protocol/ imports neither.
 * Each case lints a one-line file as if it lived in that folder.
 */
const eslint = new ESLint({ cwd: new URL('..', import.meta.url).pathname })

async function layerErrors (filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath })
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

describe('layer boundaries (npm run lint)', () => {
  it('fails broker/ importing client/', async () => {
    expect(await layerErrors('broker/probe.ts', "import { connect } from '../client/index.js'\nexport const c = connect\n"))
      .toEqual([expect.stringMatching(/broker\/ may not import client\//)])
    expect(await layerErrors('broker/tasks/probe.ts', "import type { Client } from '../../client/client.js'\nexport type C = Client\n"))
      .toHaveLength(1)
  })

  it('fails client/ importing broker/', async () => {
    expect(await layerErrors('client/probe.ts', "import { createBroker } from '../broker/index.js'\nexport const b = createBroker\n"))
      .toEqual([expect.stringMatching(/client\/ may not import broker\//)])
  })

  it('fails protocol/ importing either side or an MQTT library', async () => {
    expect(await layerErrors('protocol/probe.ts', "import { connect } from '../client/index.js'\nexport const c = connect\n")).toHaveLength(1)
    expect(await layerErrors('protocol/probe.ts', "import { createBroker } from '../broker/index.js'\nexport const b = createBroker\n")).toHaveLength(1)
    expect(await layerErrors('protocol/probe.ts', "import { Aedes } from 'aedes'\nexport const a = Aedes\n")).toHaveLength(1)
  })

  it('fails Aedes imported outside broker/mqtt/ (broker/persistence/ may implement aedes-persistence)', async () => {
    const aedesOnly = /only broker\/mqtt\/ may import Aedes/
    expect(await layerErrors('broker/probe.ts', "import { Aedes } from 'aedes'\nexport const a = Aedes\n")).toEqual([expect.stringMatching(aedesOnly)])
    expect(await layerErrors('broker/shared/probe.ts', "import type { Client } from 'aedes'\nexport type C = Client\n")).toEqual([expect.stringMatching(aedesOnly)])
    expect(await layerErrors('broker/tasks/probe.ts', "import mqemitter from 'mqemitter'\nexport const m = mqemitter\n")).toHaveLength(1)
    expect(await layerErrors('broker/durability/probe.ts', "import mqttPacket from 'mqtt-packet'\nexport const m = mqttPacket\n")).toHaveLength(1)
    expect(await layerErrors('broker/persistence/probe.ts', "import type { Client } from 'aedes'\nexport type C = Client\n")).toHaveLength(1)
    // broker/ keeps its other rule where the Aedes one applies
    expect(await layerErrors('broker/shared/probe.ts', "import { connect } from '../../client/index.js'\nexport const c = connect\n")).toHaveLength(1)
  })

  it('lets broker/mqtt/ import Aedes, and broker/persistence/ aedes-persistence', async () => {
    expect(await layerErrors('broker/mqtt/probe.ts', "import { Aedes } from 'aedes'\nimport mqemitter from 'mqemitter'\nexport const a = [Aedes, mqemitter]\n")).toEqual([])
    expect(await layerErrors('broker/mqtt/internals/probe.ts', "import type { Client } from 'aedes'\nexport type C = Client\n")).toEqual([])
    expect(await layerErrors('broker/persistence/probe.ts', "import memory from 'aedes-persistence'\nexport const m = memory\n")).toEqual([])
    expect(await layerErrors('broker/mqtt/probe.ts', "import { connect } from '../../client/index.js'\nexport const c = connect\n")).toHaveLength(1)
  })

  it('lets both sides import protocol/', async () => {
    expect(await layerErrors('broker/probe.ts', "import { taskTopic } from '../protocol/topics.js'\nexport const t = taskTopic\n")).toEqual([])
    expect(await layerErrors('client/probe.ts', "import { taskTopic } from '../protocol/topics.js'\nexport const t = taskTopic\n")).toEqual([])
  })
})
