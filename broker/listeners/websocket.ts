import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import { createWebSocketStream, WebSocketServer } from 'ws'
import { listen, type Intake, type Listener } from './bind.js'
import { recordPeer, verifiedCertificateCN } from './peer.js'
import type { TlsMaterial } from './tls-material.js'

/** The one path MQTT is served on, as Mosquitto, EMQX and mqtt.js's `ws://host:port/mqtt` expect. */
export const WEBSOCKET_PATH = '/mqtt'

/**
 * MQTT over WebSocket (`ws`), or over WebSocket over TLS (`wss`) when given
 * the TLS material: each WebSocket on {@link WEBSOCKET_PATH} becomes a byte
 * stream handed to Aedes (MQTT 3.1.1 §6.0: MQTT packets in binary frames).
 *
 * Before that, each TCP connection the connection limits admit gets
 * `connectTimeoutMs` for its TLS handshake (`wss`), then `connectTimeoutMs`
 * to send its whole upgrade request; Aedes's connect timeout starts once
 * the WebSocket is open. A message over `maxPacketBytes` closes it.
 */
export async function listenWebSocket (handle: (stream: Duplex) => void, port: number, host: string, material: TlsMaterial | undefined, intake: Intake, logger: Logger): Promise<Listener> {
  const kind = material === undefined ? 'ws' : 'wss'
  const { connectTimeoutMs, maxPacketBytes, counters } = intake
  const timeouts = {
    // Node's defaults (60 s for the headers, 300 s for the request) would let a slow client hold a socket that long.
    // Both run from the connection (after the TLS handshake on `wss`), so a socket that sends nothing is closed too.
    headersTimeout: connectTimeoutMs,
    requestTimeout: connectTimeoutMs,
    // Node checks both only this often (30 s by default): a tenth of the timeout, 100 ms to 1 s.
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.round(connectTimeoutMs / 10)))
  }
  const server: Server = material === undefined
    ? createHttpServer(timeouts)
    : createHttpsServer({ ...material, ...timeouts, handshakeTimeout: connectTimeoutMs })
  const timedOut = (socket: Duplex & { remoteAddress?: string | undefined }, phase: string): void => {
    counters.hit('connectTimeoutMs', socket.remoteAddress ?? 'unknown', { listener: kind, phase, ms: connectTimeoutMs })
  }
  const sockets = new WebSocketServer({
    noServer: true,
    // The ws library refuses a larger frame from its header, before buffering it, and closes with 1009.
    maxPayload: maxPacketBytes,
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
      ws.on('error', (err: Error & { code?: unknown }) => {
        if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
          counters.hit('maxPacketBytes', req.socket.remoteAddress ?? 'unknown', { listener: kind, max: maxPacketBytes })
        }
      })
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
    server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') timedOut(socket, 'TLS handshake')
      logger.debug({ listener: kind, remoteAddress: socket.remoteAddress, err: err.message }, 'TLS handshake failed')
    })
  }
  // Also each TLS error of `wss` (https.Server passes them on): those are counted above.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex & { remoteAddress?: string | undefined }) => {
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') timedOut(socket, 'WebSocket upgrade')
    logger.debug({ listener: kind, err: err.message }, 'bad HTTP request')
    socket.destroy()
  })
  const listener = await listen(kind, server, port, host, intake)
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
