import type { Client } from 'aedes'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import mqttPacket, { type Packet } from 'mqtt-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { TICK_MS, wheelSize } from '../broker/mqtt/internals/keepalive-wheel.js'
import { expectNothingFor, waitUntil } from './helpers/mqtt-helpers.js'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'

/*
 * Keep-alive expiry on the shared wheel (broker/mqtt/internals/keepalive-wheel.ts):
 * a connection silent for 1.5 × its keep-alive is closed [MQTT-3.1.2-24],
 * never before, and at most one wheel tick after. Real broker, raw sockets
 * (mqtt.js would ping on its own).
 */

interface RawSession { socket: Socket, closed: Promise<number>, pingresps: () => number }

/** Connects with `keepalive` seconds; resolves after the CONNACK. `closed` resolves with performance.now() at the socket's close. */
async function rawConnect (port: number, clientId: string, keepalive: number): Promise<RawSession> {
  const socket = connect(port, '127.0.0.1')
  socket.on('error', () => undefined)
  const closed = new Promise<number>((resolve) => socket.once('close', () => { resolve(performance.now()) }))
  let pingresps = 0
  const parser = mqttPacket.parser()
  const connack = new Promise<void>((resolve) => {
    parser.on('packet', (packet: Packet) => {
      if (packet.cmd === 'connack') resolve()
      if (packet.cmd === 'pingresp') pingresps++
    })
  })
  socket.on('data', (chunk: Buffer) => { parser.parse(chunk) })
  await once(socket, 'connect')
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean: true, keepalive } as Packet))
  await connack
  return { socket, closed, pingresps: () => pingresps }
}

const PINGREQ = Buffer.from([0xc0, 0x00])

describe('keep-alive (broker/mqtt/internals/keepalive-wheel.ts)', () => {
  let b: TestBroker | undefined
  const sockets: Socket[] = []
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy()
    await b?.close()
    b = undefined
  })

  it('closes a connection silent for 1.5 × its keep-alive, not before and at most a wheel tick after [MQTT-3.1.2-24]', async () => {
    b = await startBroker()
    const timeouts: string[] = []
    b.broker.aedes.on('keepaliveTimeout', (client: Client) => { timeouts.push(client.id) })
    const id = uniqueTopic('ka-silent')
    const session = await rawConnect(b.port, id, 1)
    const connackAt = performance.now()
    sockets.push(session.socket)
    const closedAt = await session.closed
    const silent = closedAt - connackAt
    expect(silent, 'closed before 1.5 × keep-alive').toBeGreaterThanOrEqual(1500)
    // One tick late at most, plus scheduling on a busy test machine.
    expect(silent, 'closed long after 1.5 × keep-alive').toBeLessThan(1500 + TICK_MS + 1000)
    expect(timeouts, "Aedes's 'keepaliveTimeout' event is still emitted").toEqual([id])
    await waitUntil(() => (b!.broker.aedes as unknown as { clients: Record<string, unknown> }).clients[id] === undefined, 'Aedes to drop the client')
  })

  it('each packet restarts the period: a client pinging within its keep-alive stays connected, and is closed 1.5 × after its last packet', async () => {
    b = await startBroker()
    const session = await rawConnect(b.port, uniqueTopic('ka-pinging'), 1)
    sockets.push(session.socket)
    let closed = false
    void session.closed.then(() => { closed = true })
    // The client's own behaviour: a PINGREQ every 700 ms, under its 1 s keep-alive.
    let lastPing = performance.now()
    const pinger = setInterval(() => { lastPing = performance.now(); session.socket.write(PINGREQ) }, 700)
    try {
      await waitUntil(() => session.pingresps() >= 5, 'five PINGRESPs', 10_000)
      expect(closed, 'closed while pinging within its keep-alive').toBe(false)
    } finally {
      clearInterval(pinger)
    }
    await expectNothingFor(300, () => closed, 'closed 300 ms after its last PINGREQ')
    const closedAt = await session.closed
    expect(closedAt - lastPing, 'closed before 1.5 × keep-alive after the last packet').toBeGreaterThanOrEqual(1500)
    expect(closedAt - lastPing).toBeLessThan(1500 + TICK_MS + 1000)
  })

  it('keep-alive 0 is never timed out, and a closed connection leaves the wheel', async () => {
    b = await startBroker()
    const none = await rawConnect(b.port, uniqueTopic('ka-none'), 0)
    sockets.push(none.socket)
    const timed = await rawConnect(b.port, uniqueTopic('ka-timed'), 30)
    sockets.push(timed.socket)
    const id = uniqueTopic('ka-leaving')
    const leaving = await rawConnect(b.port, id, 30)
    const client = (b.broker.aedes as unknown as { clients: Record<string, { _keepaliveTimer: { client: unknown } | null } | undefined> }).clients[id]
    const entry = client?._keepaliveTimer
    expect(entry?.client, 'the client is on the wheel once its CONNACK is sent').toBe(client)
    expect(wheelSize()).toBeGreaterThanOrEqual(2)
    leaving.socket.destroy()
    await leaving.closed
    // The broker's side closes on the socket's 'close' (internals/socket-listeners.ts).
    await waitUntil(() => entry?.client === null, 'the closed client to let go of its wheel entry')
    expect(none.socket.destroyed).toBe(false)
  })
})
