import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import type { Client } from 'aedes'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { Clients, expectNothingFor, summary, waitForMessages, waitUntil, type Message } from './helpers/mqtt-helpers.js'

// Interop with Mosquitto's command-line clients (Debian package
// mosquitto-clients), MQTT 3.1.1. Each message mosquitto_sub prints is one
// `MSG|topic|qos|retain|payload` line; its -d debug lines say when it is subscribed.
const FORMAT = 'MSG|%t|%q|%r|%p'

interface Run {
  child: ChildProcess
  /** stdout so far */
  out: () => string
  /** exit code, once the process has exited */
  exited: Promise<number | null>
}

const flags = (m: Message): string => `${m.topic}|${m.qos}|${m.retain ? 1 : 0}|${m.payload}`

describe('interop with mosquitto_pub and mosquitto_sub', () => {
  let b: TestBroker | undefined
  const clients = new Clients()
  const children: ChildProcess[] = []

  beforeAll(() => {
    for (const bin of ['mosquitto_sub', 'mosquitto_pub']) {
      const probe = spawnSync(bin, ['--help'], { encoding: 'utf8' })
      if (probe.error !== undefined) {
        throw new Error(`${bin} is not installed or not on PATH (${probe.error.message}): ` +
          'these tests need the Debian package mosquitto-clients (apt-get install mosquitto-clients); CI installs it')
      }
    }
  })

  afterEach(async () => {
    // our own children only, by their handle
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await clients.closeAll()
    await b?.close()
  })

  function run (bin: string, args: string[]): Run {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    children.push(child)
    let stdout = ''
    let stderr = ''
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', reject)
      child.once('close', (code) => {
        if (code !== 0) console.error(`${bin} ${args.join(' ')} exited with ${code}\n${stdout}${stderr}`)
        resolve(code)
      })
    })
    return { child, out: () => stdout, exited }
  }

  function hostArgs (): string[] {
    return ['-h', '127.0.0.1', '-p', String(b!.port)]
  }

  /** Runs mosquitto_pub and resolves once it has exited (after PUBACK for QoS 1). */
  async function mosquittoPub (topic: string, payload: string, qos: 0 | 1, retain = false): Promise<void> {
    const args = [...hostArgs(), '-t', topic, '-m', payload, '-q', String(qos), ...(retain ? ['-r'] : [])]
    expect(await run('mosquitto_pub', args).exited, `mosquitto_pub ${args.join(' ')}`).toBe(0)
  }

  /** Starts mosquitto_sub and resolves once its SUBACK has arrived. */
  async function mosquittoSub (filter: string, count: number, extra: string[] = []): Promise<Run> {
    const sub = run('mosquitto_sub', [...hostArgs(), '-t', filter, '-q', '1', '-C', String(count), '-W', '30', '-d', '-F', FORMAT, ...extra])
    // Or already done: a persistent session's queue streams right after
    // CONNACK, so under load all `count` messages can arrive before the SUBACK.
    await waitUntil(() => /received SUBACK/i.test(sub.out()) || sub.child.exitCode !== null, 'mosquitto_sub to be subscribed (SUBACK)', 10_000, sub.out)
    return sub
  }

  function printed (sub: Run): string[] {
    return sub.out().split('\n').filter((line) => line.startsWith('MSG|')).map((line) => line.slice('MSG|'.length))
  }

  function brokerSawDisconnect (clientId: string): Promise<void> {
    return new Promise((resolve) => {
      const aedes = b!.broker.aedes
      const onDisconnect = (client: Client): void => {
        if (client.id === clientId) { aedes.off('clientDisconnect', onDisconnect); resolve() }
      }
      aedes.on('clientDisconnect', onDisconnect)
    })
  }

  it('mosquitto_sub receives what mqtt.js publishes: QoS 0, QoS 1, retained', async () => {
    b = await startBroker()
    const p = uniqueTopic('to-mosquitto')
    const pub = await clients.connect(b.url, { clientId: 'mqttjs-pub' })
    await pub.client.publishAsync(`${p}/state`, 'on', { qos: 1, retain: true })

    const sub = await mosquittoSub(`${p}/#`, 5)
    await pub.client.publishAsync(`${p}/zero`, 'qos 0', { qos: 0 })
    for (const n of ['1', '2', '3']) await pub.client.publishAsync(`${p}/live`, `qos 1 #${n} ünï`, { qos: 1 })
    expect(await sub.exited).toBe(0)

    const lines = printed(sub)
    expect([...lines].sort()).toEqual([
      `${p}/state|1|1|on`, `${p}/zero|0|0|qos 0`, `${p}/live|1|0|qos 1 #1 ünï`, `${p}/live|1|0|qos 1 #2 ünï`, `${p}/live|1|0|qos 1 #3 ünï`
    ].sort())
    // one publisher, one topic, one QoS: in order [MQTT-4.6.0-6]
    expect(lines.filter((l) => l.startsWith(`${p}/live|`))).toEqual(['1', '2', '3'].map((n) => `${p}/live|1|0|qos 1 #${n} ünï`))
  })

  it('mqtt.js receives what mosquitto_pub publishes: QoS 0, QoS 1, retained', async () => {
    b = await startBroker()
    const p = uniqueTopic('from-mosquitto')
    const sub = await clients.connect(b.url, { clientId: 'mqttjs-sub' })
    await sub.client.subscribeAsync(`${p}/#`, { qos: 1 })

    await mosquittoPub(`${p}/zero`, 'qos 0', 0)
    await mosquittoPub(`${p}/one`, 'qos 1', 1)
    await mosquittoPub(`${p}/state`, 'kept', 1, true)
    await waitForMessages(sub.messages, 3, 'messages from mosquitto_pub')
    // window to catch a duplicate
    await expectNothingFor(300, () => sub.messages.length > 3, () => summary(sub.messages).join(', '))
    // each mosquitto_pub exits after its publish is done, so they arrive in this order
    expect(sub.messages.map(flags)).toEqual([`${p}/zero|0|0|qos 0`, `${p}/one|1|0|qos 1`, `${p}/state|1|0|kept`])

    // the retained one reaches a later subscriber, with the retain flag
    const late = await clients.connect(b.url, { clientId: 'mqttjs-late' })
    await late.client.subscribeAsync(`${p}/#`, { qos: 1 })
    await waitForMessages(late.messages, 1, 'retained message from mosquitto_pub')
    await expectNothingFor(300, () => late.messages.length > 1, () => summary(late.messages).join(', '))
    expect(late.messages.map(flags)).toEqual([`${p}/state|1|1|kept`])
  })

  it('a persistent mosquitto_sub (-c -i -q 1) gets what was published while it was away, across a restart too', async () => {
    b = await startBroker()
    const p = uniqueTopic('mosquitto-away')
    const id = `mosq-${p}`
    // -E: exit once subscribed, leaving the session behind
    let gone = brokerSawDisconnect(id)
    const first = await mosquittoSub(`${p}/#`, 1, ['-c', '-i', id, '-E'])
    expect(await first.exited).toBe(0)
    await gone

    const pub = await clients.connect(b.url, { clientId: 'mqttjs-pub' })
    for (const n of [1, 2, 3]) await pub.client.publishAsync(`${p}/away`, `m${n}`, { qos: 1 })

    gone = brokerSawDisconnect(id)
    // --nodelay: this subscriber closes its socket as soon as it has printed
    // its 3rd message, and the SUBACK may still be unread then (the queue
    // streams right after CONNACK, Mosquitto's own broker does the same). Linux
    // answers close() with unread data by a RST that discards what is still
    // in the send queue, and with Nagle on, libmosquitto 2.0.11's PUBACKs for
    // m2 and m3 can still be there (held until m1's PUBACK is acknowledged):
    // they never reach the broker, which rightly sends m2 and m3 again
    // [MQTT-4.4.0-1]. Mosquitto 2.0.11 as the broker loses them the same way.
    const back = await mosquittoSub(`${p}/#`, 3, ['-c', '-i', id, '--nodelay'])
    expect(await back.exited).toBe(0)
    expect(printed(back)).toEqual([1, 2, 3].map((n) => `${p}/away|1|0|m${n}`))
    await gone

    // away again, and the broker restarts meanwhile
    for (const n of [4, 5]) await pub.client.publishAsync(`${p}/away`, `m${n}`, { qos: 1 })
    await pub.client.endAsync()
    await b.restart()
    const again = await mosquittoSub(`${p}/#`, 2, ['-c', '-i', id])
    expect(await again.exited).toBe(0)
    // m1-m3 were acknowledged: only m4 and m5 come back
    expect(printed(again)).toEqual([4, 5].map((n) => `${p}/away|1|0|m${n}`))
  })
})
