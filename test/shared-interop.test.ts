import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { afterEach, describe, expect, it } from 'vitest'
import mqtt, { type MqttClient } from 'mqtt'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { expectNothingFor, waitUntil } from './helpers/wait.js'

const MOSQUITTO_SUB = '/usr/bin/mosquitto_sub'

interface SubProcess { child: ChildProcess, lines: string[], subscribed: Promise<void> }

/** mosquitto_sub (Debian mosquitto-clients) as a group member; -d tells us when SUBACK arrived. */
function mosquittoSub (port: number, clientId: string, filter: string): SubProcess {
  // stdbuf -oL: mosquitto_sub block-buffers stdout into a pipe; we need each line as it comes
  const child = spawn('stdbuf', ['-oL', MOSQUITTO_SUB, '-h', '127.0.0.1', '-p', String(port), '-i', clientId, '-q', '1', '-t', filter, '-v', '-d'], {
    stdio: ['ignore', 'pipe', 'pipe']
  })
  const lines: string[] = []
  let onSuback: () => void = () => undefined
  const subscribed = new Promise<void>((resolve, reject) => {
    onSuback = resolve
    child.once('error', (err) => reject(new Error(`cannot run ${MOSQUITTO_SUB} (apt-get install mosquitto-clients): ${err.message}`)))
    child.once('exit', (code) => reject(new Error(`mosquitto_sub exited with ${String(code)} before subscribing`)))
  })
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.includes('received SUBACK')) onSuback()
    // debug lines start with "Client "; messages are "topic payload"
    else if (!line.startsWith('Client ') && !line.startsWith('Subscribed')) lines.push(line)
  })
  return { child, lines, subscribed }
}

describe('interop: mosquitto_sub processes as shared subscription members', () => {
  let b: TestBroker | undefined
  const subs: SubProcess[] = []
  const clients: MqttClient[] = []
  afterEach(async () => {
    for (const s of subs.splice(0)) s.child.kill('SIGTERM')
    await Promise.all(clients.splice(0).map((c) => c.endAsync(true)))
    await b?.close()
  })

  it("two `mosquitto_sub -t '$share/g/jobs/#'` processes split the messages, each exactly once", async () => {
    b = await startBroker()
    const topic = uniqueTopic('jobs')
    const a = mosquittoSub(b.port, 'ms-a', `$share/g/${topic}/#`)
    const c = mosquittoSub(b.port, 'ms-b', `$share/g/${topic}/#`)
    subs.push(a, c)
    await Promise.all([a.subscribed, c.subscribed])

    const pub = await mqtt.connectAsync(b.url, { protocolVersion: 4, reconnectPeriod: 0 })
    clients.push(pub)
    for (let i = 0; i < 200; i++) await pub.publishAsync(`${topic}/${i % 4}`, String(i), { qos: 1 })

    const total = (): number => a.lines.length + c.lines.length
    await waitUntil(() => total() >= 200, () => `200 lines from the two mosquitto_sub (got ${total()})`)
    await expectNothingFor(300, () => total() > 200, 'a message printed twice')
    const payloads = [...a.lines, ...c.lines].map((line) => Number(line.split(' ')[1])).sort((x, y) => x - y)
    expect(payloads).toEqual(Array.from({ length: 200 }, (_, i) => i))
    expect(a.lines.length).toBeGreaterThan(50)
    expect(c.lines.length).toBeGreaterThan(50)
  })
})
