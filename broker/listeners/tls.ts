import { createServer, type TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import { listen, type Intake, type Listener } from './bind.js'
import { recordPeer, verifiedCertificateCN } from './peer.js'
import type { TlsMaterial } from './tls-material.js'

/**
 * MQTT over TLS (`mqtts://`): each TCP connection the connection limits
 * admit gets `connectTimeoutMs` for its TLS handshake, then is handed to
 * Aedes, whose connect timeout starts then.
 */
export async function listenTls (handle: (socket: TLSSocket) => void, port: number, host: string, material: TlsMaterial, intake: Intake, logger: Logger): Promise<Listener> {
  // Node's default is 120 s: a client holding handshakes open would hold that many sockets that long.
  const server = createServer({ ...material, handshakeTimeout: intake.connectTimeoutMs }, (socket) => {
    // As on the plain listener (tcp.ts): Nagle's algorithm would hold small
    // records, a PUBACK say, back for tens of milliseconds. (ws sets it on
    // WebSocket connections itself.)
    socket.setNoDelay(true)
    recordPeer(socket, { listener: 'mqtts', remoteAddress: socket.remoteAddress, certificateCN: verifiedCertificateCN(socket) })
    handle(socket)
  })
  // A failed handshake (no certificate with tls.requireCertificate, a client that
  // does not trust ours, plain MQTT on the TLS port, a timeout) ends that socket only.
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
      intake.counters.hit('connectTimeoutMs', socket.remoteAddress ?? 'unknown', { listener: 'mqtts', phase: 'TLS handshake', ms: intake.connectTimeoutMs })
    }
    logger.debug({ listener: 'mqtts', remoteAddress: socket.remoteAddress, err: err.message }, 'TLS handshake failed')
    // Node reports a handshake timeout but leaves the socket open (https.Server destroys it; tls.Server does not).
    socket.destroy()
  })
  return await listen('mqtts', server, port, host, intake)
}
