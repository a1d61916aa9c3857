import { EventEmitter, once } from 'node:events'
import { connect, type Socket } from 'node:net'
import mqttPacket, { type Packet } from 'mqtt-packet'

export interface RawPublish {
  topic: string
  payload: string
  qos: number
  dup: boolean
  messageId: number | undefined
}

/**
 * A bare MQTT 3.1.1 client over TCP that acknowledges only when told to.
 * mqtt.js sends the PUBACK when its handler returns and holds back every
 * later packet until then, so it cannot hold two messages unacknowledged;
 * tests of windows and leases need this instead.
 */
export class RawClient extends EventEmitter<{ publish: [RawPublish], packet: [Packet] }> {
  readonly received: RawPublish[] = []
  readonly #socket: Socket
  #nextId = 1

  private constructor (socket: Socket) {
    super()
    this.#socket = socket
    const parser = mqttPacket.parser({ protocolVersion: 4 })
    parser.on('packet', (packet: Packet) => {
      if (packet.cmd === 'publish') {
        const p: RawPublish = {
          topic: packet.topic,
          payload: packet.payload.toString(),
          qos: packet.qos,
          dup: packet.dup,
          messageId: packet.messageId
        }
        this.received.push(p)
        this.emit('publish', p)
      }
      this.emit('packet', packet)
    })
    socket.on('data', (chunk) => parser.parse(chunk))
    socket.on('error', () => undefined)
  }

  static async connect (port: number, clientId: string, clean = true): Promise<RawClient> {
    const socket = connect(port, '127.0.0.1')
    socket.setNoDelay(true)
    await once(socket, 'connect')
    const client = new RawClient(socket)
    const connack = client.#waitFor('connack')
    client.#send({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId, clean, keepalive: 60 })
    const ack = await connack
    if (ack.cmd !== 'connack' || ack.returnCode !== 0) throw new Error(`CONNECT refused: ${JSON.stringify(ack)}`)
    return client
  }

  /** Subscribes and resolves with the granted QoS (128 = refused). */
  async subscribe (topic: string, qos: 0 | 1 | 2 = 1): Promise<number> {
    const messageId = this.#nextId++
    const suback = this.#waitFor('suback', messageId)
    this.#send({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] })
    const packet = await suback
    return packet.cmd === 'suback' ? (packet.granted[0] as number) : -1
  }

  async unsubscribe (topic: string): Promise<void> {
    const messageId = this.#nextId++
    const unsuback = this.#waitFor('unsuback', messageId)
    this.#send({ cmd: 'unsubscribe', messageId, unsubscriptions: [topic] })
    await unsuback
  }

  puback (messageId: number | undefined): void {
    if (messageId === undefined) return
    this.#send({ cmd: 'puback', messageId })
  }

  publish (topic: string, payload: string, qos: 0 | 1 = 0): void {
    this.#send({ cmd: 'publish', topic, payload, qos, retain: false, dup: false, ...(qos > 0 ? { messageId: this.#nextId++ } : {}) })
  }

  /** Drops the connection without DISCONNECT (a crash, as the broker sees it). */
  destroy (): void {
    this.#socket.destroy()
  }

  async end (): Promise<void> {
    if (this.#socket.destroyed) return
    this.#send({ cmd: 'disconnect' })
    this.#socket.end()
    await once(this.#socket, 'close')
  }

  #send (packet: Packet | Record<string, unknown>): void {
    this.#socket.write(mqttPacket.generate(packet as Packet))
  }

  #waitFor (cmd: string, messageId?: number): Promise<Packet> {
    return new Promise((resolve, reject) => {
      const onPacket = (packet: Packet): void => {
        if (packet.cmd !== cmd) return
        if (messageId !== undefined && (packet as { messageId?: number }).messageId !== messageId) return
        this.off('packet', onPacket)
        resolve(packet)
      }
      this.on('packet', onPacket)
      this.#socket.once('close', () => reject(new Error(`connection closed waiting for ${cmd}`)))
    })
  }
}
