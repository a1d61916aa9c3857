import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startBroker, uniqueTopic, type TestBroker } from './helpers/start-broker.js'
import { waitUntil } from './helpers/wait.js'

/*
 * CONNECT with a zero-byte client id, in raw bytes: mqtt.js would fill in an
 * id of its own. MQTT 3.1.1 §3.1.3.1: the server assigns an id to a clean
 * session [MQTT-3.1.3-6, MQTT-3.1.3-7] and refuses a persistent one with
 * CONNACK 0x02, then closes the connection [MQTT-3.1.3-8].
 */

/** CONNECT, MQTT 3.1.1, keep-alive 60 s, the given client id. */
function connectBytes (clientId: string, clean: boolean): Buffer {
  const id = Buffer.from(clientId, 'utf8')
  const variable = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, clean ? 0x02 : 0x00, 0x00, 0x3c])
  const body = Buffer.concat([variable, Buffer.from([id.length >> 8, id.length & 0xff]), id])
  return Buffer.concat([Buffer.from([0x10, body.length]), body])
}

const CONNACK_ACCEPTED = [0x20, 0x02, 0x00, 0x00]
const CONNACK_IDENTIFIER_REJECTED = [0x20, 0x02, 0x00, 0x02]

/** A raw socket that records every byte it gets and whether the broker closed it. */
interface Raw {
  socket: Socket
  bytes: () => number[]
  closed: () => boolean
}

async function open (port: number): Promise<Raw> {
  const socket = connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  let closed = false
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.on('error', () => undefined)
  socket.on('close', () => { closed = true })
  await once(socket, 'connect')
  return { socket, bytes: () => [...Buffer.concat(chunks)], closed: () => closed }
}

/** SUBSCRIBE at QoS 0, packet id 1. */
function subscribeBytes (filter: string): Buffer {
  const topic = Buffer.from(filter)
  const body = Buffer.concat([Buffer.from([0x00, 0x01, topic.length >> 8, topic.length & 0xff]), topic, Buffer.from([0x00])])
  return Buffer.concat([Buffer.from([0x82, body.length]), body])
}

/** PUBLISH at QoS 0. */
function publishBytes (name: string, payload: string): Buffer {
  const topic = Buffer.from(name)
  const body = Buffer.concat([Buffer.from([topic.length >> 8, topic.length & 0xff]), topic, Buffer.from(payload)])
  return Buffer.concat([Buffer.from([0x30, body.length]), body])
}

describe('CONNECT with a zero-byte client id', () => {
  let broker: TestBroker
  const sockets: Socket[] = []
  beforeAll(async () => { broker = await startBroker() })
  afterAll(async () => {
    for (const socket of sockets) socket.destroy()
    await broker.close()
  })

  async function rawConnect (clientId: string, clean: boolean): Promise<Raw> {
    const raw = await open(broker.port)
    sockets.push(raw.socket)
    raw.socket.write(connectBytes(clientId, clean))
    await waitUntil(() => raw.bytes().length >= 4 || raw.closed(), 'a CONNACK')
    return raw
  }

  it('gets an id from the server with a clean session, distinct per connection [MQTT-3.1.3-6, MQTT-3.1.3-7]', async () => {
    const first = await rawConnect('', true)
    const second = await rawConnect('', true)
    expect(first.bytes()).toEqual(CONNACK_ACCEPTED)
    expect(second.bytes()).toEqual(CONNACK_ACCEPTED)

    // Both stay connected and both are served: had they been given the same
    // id, the second would have taken the first one's session over.
    const topic = uniqueTopic('zero-id')
    first.socket.write(subscribeBytes(topic))
    second.socket.write(subscribeBytes(topic))
    const suback = [0x90, 0x03, 0x00, 0x01, 0x00]
    await waitUntil(() => first.bytes().length >= 9 && second.bytes().length >= 9, 'two SUBACKs')
    expect(first.bytes().slice(4, 9)).toEqual(suback)
    expect(second.bytes().slice(4, 9)).toEqual(suback)
    const publish = [...publishBytes(topic, 'hello')]
    const publisher = await rawConnect('zero-id-publisher', true)
    publisher.socket.write(Buffer.from(publish))
    await waitUntil(() => first.bytes().length >= 9 + publish.length && second.bytes().length >= 9 + publish.length, 'the publish at both')
    expect(first.bytes().slice(9)).toEqual(publish)
    expect(second.bytes().slice(9)).toEqual(publish)
    expect(first.closed() || second.closed()).toBe(false)
  })

  it('is refused with CONNACK 0x02 and closed with a persistent session [MQTT-3.1.3-8]', async () => {
    const raw = await rawConnect('', false)
    await waitUntil(raw.closed, 'the broker to close the connection')
    expect(raw.bytes()).toEqual(CONNACK_IDENTIFIER_REJECTED)
  })

  it('still accepts a persistent session with a client id', async () => {
    const raw = await rawConnect(uniqueTopic('persistent'), false)
    expect(raw.bytes()).toEqual(CONNACK_ACCEPTED)
    expect(raw.closed()).toBe(false)
  })
})
