import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import { createWebSocketStream, WebSocketServer } from 'ws'
import { listen, type Listener } from './bind.js'
import { recordPeer, verifiedCertificateCN } from './peer.js'
import type { TlsMaterial } from './tls-material.js'

/** The one path MQTT is served on, as Mosquitto, EMQX and mqtt.js's `ws://host:port/mqtt` expect. */
export const WEBSOCKET_PATH = '/mqtt'

/**
 * MQTT over WebSocket (`ws`), or over WebSocket over TLS (`wss`) when given
 * the TLS material: each WebSocket on {@link WEBSOCKET_PATH} becomes a byte
 * stream handed to Aedes (MQTT 3.1.1 §6.0: MQTT packets in binary frames).
 */
export async function listenWebSocket (handle: (stream: Duplex) => void, port: number, host: string, material: TlsMaterial | undefined, logger: Logger): Promise<Listener> {
  const kind = material === undefined ? 'ws' : 'wss'
  const server: Server = material === undefined ? createHttpServer() : createHttpsServer(material)
  const sockets = new WebSocketServer({
    noServer: true,
    // [MQTT-6.0.0-3]/[MQTT-6.0.0-4]: the subprotocol is "mqtt" (3.1 clients offer "mqttv3.1").
    // A client offering only others gets none and fails the handshake itself (RFC 6455 §4.1).
    handleProtocols: (offered) => offered.has('mqtt') ? 'mqtt' : offered.has('mqttv3.1') ? 'mqttv3.1' : false
  })
  // Plain HTTP gets nothing but a status: 426 on the MQTT path, 404 elsewhere.
  server.on('request', (req, res) => {
    const status = pathOf(req) === WEBSOCKET_PATH ? 426 : 404
    res.writeHead(status, { 'content-type': 'text/plain', connection: 'close' }).end(`${status === 426 ? 'Upgrade Required' : 'Not Found'}\n`)
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (pathOf(req) !== WEBSOCKET_PATH) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    sockets.handleUpgrade(req, socket, head, (ws) => {
      const stream = createWebSocketStream(ws)
      const tlsSocket = material === undefined ? undefined : req.socket as TLSSocket
      recordPeer(stream, {
        listener: kind,
        remoteAddress: req.socket.remoteAddress,
        certificateCN: tlsSocket === undefined ? undefined : verifiedCertificateCN(tlsSocket)
      })
      handle(stream)
    })
  })
  if (material !== undefined) {
    server.on('tlsClientError', (err: Error, socket: TLSSocket) => {
      logger.debug({ listener: kind, remoteAddress: socket.remoteAddress, err: err.message }, 'TLS handshake failed')
    })
  }
  server.on('clientError', (err: Error, socket: Duplex) => {
    logger.debug({ listener: kind, err: err.message }, 'bad HTTP request')
    socket.destroy()
  })
  const listener = await listen(kind, server, port, host)
  let closing: Promise<void> | null = null
  return {
    ...listener,
    close () {
      // The sockets under the WebSocket server's clients are among the listener's: close() ends them.
      closing ??= listener.close().then(() => new Promise<void>((resolve) => sockets.close(() => resolve())))
      return closing
    }
  }
}

function pathOf (req: IncomingMessage): string {
  const url = req.url ?? '/'
  const query = url.indexOf('?')
  return query === -1 ? url : url.slice(0, query)
}
