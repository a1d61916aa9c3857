import { createServer, type TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import { listen, type Listener } from './bind.js'
import { recordPeer, verifiedCertificateCN } from './peer.js'
import type { TlsMaterial } from './tls-material.js'

/** MQTT over TLS (`mqtts://`): each connection is handed to Aedes once its handshake is done. */
export async function listenTls (handle: (socket: TLSSocket) => void, port: number, host: string, material: TlsMaterial, logger: Logger): Promise<Listener> {
  const server = createServer(material, (socket) => {
    recordPeer(socket, { listener: 'mqtts', remoteAddress: socket.remoteAddress, certificateCN: verifiedCertificateCN(socket) })
    handle(socket)
  })
  // A failed handshake (no certificate with tls.requireCertificate, a client that
  // does not trust ours, plain MQTT on the TLS port) ends that socket only.
  server.on('tlsClientError', (err, socket) => {
    logger.debug({ listener: 'mqtts', remoteAddress: socket.remoteAddress, err: err.message }, 'TLS handshake failed')
  })
  return await listen('mqtts', server, port, host)
}
