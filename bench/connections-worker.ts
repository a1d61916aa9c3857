// One connecting process of bench/connections.ts: thousands of idle MQTT
// connections on raw sockets. Each writes a CONNECT made once by mqtt-packet
// and reads the 4-byte CONNACK [MQTT-3.2]; no MQTT client library, so this
// process costs a few KB per connection and is never the bottleneck.
// Driven over the IPC channel by the parent (messages below).
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import mqttPacket from 'mqtt-packet'

export interface ConnectCommand {
  type: 'connect'
  host: string
  port: number
  /** Source addresses (127.0.x.y), round robin: loopback has about 28,000 ephemeral ports per address. */
  addresses: string[]
  /** Client ids `${idPrefix}-${first + i}`. */
  idPrefix: string
  first: number
  count: number
  /** Connections waiting for their CONNACK at once. */
  concurrency: number
  keepalive: number
  /** A connection without CONNACK after this long counts as failed. */
  connackTimeoutMs: number
}

/** Destroys every socket (no DISCONNECT, as a network drop) and connects them all again at once. */
export interface StormCommand { type: 'storm', concurrency: number, connackTimeoutMs: number }
export interface CloseCommand { type: 'close' }
export type WorkerCommand = ConnectCommand | StormCommand | CloseCommand

export interface ConnectedReply {
  type: 'connected'
  ok: number
  failed: number
  /** From the first connect to the last CONNACK, ms. */
  ms: number
  firstError: string | null
}
export interface ClosedReply { type: 'closed' }
/** Sent once at start: commands sent before the listener exists would be lost. */
export interface ReadyReply { type: 'ready' }
export type WorkerReply = ConnectedReply | ClosedReply | ReadyReply

const PINGREQ = Buffer.from([0xc0, 0x00])
const DISCONNECT = Buffer.from([0xe0, 0x00])

class Connections {
  sockets: Array<Socket | null> = []
  #plan: ConnectCommand | null = null
  #ping: NodeJS.Timeout | null = null
  #pingNext = 0

  /** Opens `plan.count` connections, at most `concurrency` awaiting CONNACK at a time. */
  async open (plan: ConnectCommand, concurrency: number, connackTimeoutMs: number): Promise<ConnectedReply> {
    this.#plan = plan
    this.sockets = new Array<Socket | null>(plan.count).fill(null)
    let ok = 0
    let failed = 0
    let firstError: string | null = null
    let next = 0
    const started = performance.now()
    let last = started
    await new Promise<void>((resolve) => {
      let pending = 0
      const launch = (): void => {
        while (pending < concurrency && next < plan.count) {
          const index = next++
          pending++
          this.#connectOne(plan, index, connackTimeoutMs, (error) => {
            pending--
            if (error === null) { ok++; last = performance.now() } else { failed++; firstError ??= error }
            if (next >= plan.count && pending === 0) resolve()
            else launch()
          })
        }
        if (plan.count === 0) resolve()
      }
      launch()
    })
    this.#startPings(plan.keepalive)
    return { type: 'connected', ok, failed, ms: last - started, firstError }
  }

  #connectOne (plan: ConnectCommand, index: number, connackTimeoutMs: number, done: (error: string | null) => void): void {
    const packet = mqttPacket.generate({
      cmd: 'connect',
      protocolId: 'MQTT',
      protocolVersion: 4,
      clean: true,
      clientId: `${plan.idPrefix}-${plan.first + index}`,
      keepalive: plan.keepalive
    })
    const socket = connect({ host: plan.host, port: plan.port, localAddress: plan.addresses[index % plan.addresses.length] })
    socket.setNoDelay(true)
    let settled = false
    const timer = setTimeout(() => settle(`no CONNACK within ${connackTimeoutMs} ms`), connackTimeoutMs)
    const settle = (error: string | null): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      if (error === null) this.sockets[index] = socket
      else socket.destroy()
      done(error)
    }
    socket.once('connect', () => socket.write(packet))
    let header = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      if (settled) return // PINGRESPs once connected
      header = Buffer.concat([header, chunk])
      if (header.length < 4) return
      // CONNACK: 0x20, remaining length 2, flags, return code [MQTT-3.2.2-3].
      if (header[0] !== 0x20 || header[3] !== 0) settle(`CONNACK ${header.subarray(0, 4).toString('hex')}`)
      else settle(null)
    })
    socket.on('error', (err) => settle(err.message))
    socket.on('close', () => {
      settle('closed before CONNACK')
      if (this.sockets[index] === socket) this.sockets[index] = null
    })
  }

  /**
   * Idle devices with keep-alive K send a PINGREQ every K seconds
   * [MQTT-3.1.2-23]: 1/K of them each second, as a fleet would.
   */
  #startPings (keepalive: number): void {
    if (this.#ping !== null) clearInterval(this.#ping)
    this.#ping = setInterval(() => {
      const n = Math.ceil(this.sockets.length / Math.max(1, keepalive))
      for (let i = 0; i < n && this.sockets.length > 0; i++) {
        this.#pingNext = (this.#pingNext + 1) % this.sockets.length
        this.sockets[this.#pingNext]?.write(PINGREQ)
      }
    }, 1_000)
  }

  /** Destroys all sockets at once, then opens them all again. */
  async storm (concurrency: number, connackTimeoutMs: number): Promise<ConnectedReply> {
    if (this.#plan === null) throw new Error('storm before connect')
    for (const socket of this.sockets) socket?.destroy()
    return this.open(this.#plan, concurrency, connackTimeoutMs)
  }

  async close (): Promise<void> {
    if (this.#ping !== null) clearInterval(this.#ping)
    await Promise.all(this.sockets.map((socket) => new Promise<void>((resolve) => {
      if (socket === null || socket.destroyed) { resolve(); return }
      socket.once('close', () => resolve())
      socket.end(DISCONNECT)
      setTimeout(() => socket.destroy(), 2_000).unref()
    })))
  }
}

const connections = new Connections()
const reply = (message: WorkerReply): void => { process.send?.(message) }

process.on('message', (message: WorkerCommand) => {
  if (message.type === 'connect') void connections.open(message, message.concurrency, message.connackTimeoutMs).then(reply)
  else if (message.type === 'storm') void connections.storm(message.concurrency, message.connackTimeoutMs).then(reply)
  else if (message.type === 'close') void connections.close().then(() => { reply({ type: 'closed' }); process.disconnect() })
})
// The parent died: nothing left to measure.
process.on('disconnect', () => { process.exit(0) })
reply({ type: 'ready' })
