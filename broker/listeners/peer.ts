import { Socket, type Server } from 'node:net'
import type { Duplex } from 'node:stream'
import type { TLSSocket } from 'node:tls'

export type ListenerKind = 'mqtt' | 'mqtts' | 'ws' | 'wss' | 'http'

/**
 * What a listener knows about a connection that MQTT does not carry: the
 * listener it came in on, the remote address, and for TLS a client
 * certificate verified against `tls.ca`.
 */
export interface PeerInfo {
  readonly listener: ListenerKind
  /** The remote IP address; for WebSocket connections, of the TCP socket under them. */
  readonly remoteAddress: string | undefined
  /**
   * The subject CN of the client certificate, only when one was presented
   * and verified against `tls.ca` (on `mqtts` and `wss`); otherwise undefined.
   */
  readonly certificateCN: string | undefined
}

// Keyed by the stream handed to the adapter (Aedes's `client.conn`): dropped with it.
const peers = new WeakMap<Duplex, PeerInfo>()

/** The servers of the plain TCP listeners (tcp.ts). */
const tcpServers = new WeakSet<Server>()

/** Called by each listener but the TCP one before it hands `stream` to the adapter. */
export function recordPeer (stream: Duplex, info: PeerInfo): void {
  peers.set(stream, info)
}

/**
 * Called once by the TCP listener for its server: its connections are then
 * known by the server Node gives each accepted socket (`socket.server`), with
 * nothing recorded per connection (a WeakMap entry cost about 33 bytes per
 * idle connection, docs/benchmarks.md "Idle connections"). Their remote
 * address is read from the socket when asked (Node keeps it once read, after
 * the socket closes too).
 */
export function recordTcpServer (server: Server): void {
  tcpServers.add(server)
}

/**
 * The listener's facts about a connection, by the stream the adapter was
 * handed (`client.conn` in an Aedes hook); undefined for a stream no
 * listener handed over.
 */
export function peerOf (stream: Duplex): PeerInfo | undefined {
  const info = peers.get(stream)
  if (info !== undefined) return info
  // A TLS socket's server is the TLS listener's, and it is recorded above.
  if (!(stream instanceof Socket) || !tcpServers.has((stream as Socket & { server?: Server }).server as Server)) return undefined
  return { listener: 'mqtt', remoteAddress: stream.remoteAddress, certificateCN: undefined }
}

/** The subject CN of a TLS socket's client certificate, if it presented one that was verified. */
export function verifiedCertificateCN (socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined
  const cn: unknown = socket.getPeerCertificate().subject?.CN
  // A subject with several CNs is ambiguous as an identity: none is taken.
  return typeof cn === 'string' && cn !== '' ? cn : undefined
}
