import type { Socket } from 'node:net'
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

/** What is recorded for a plain TCP connection: its socket has the rest. */
const TCP = 'mqtt'

// Keyed by the stream handed to the adapter (Aedes's `client.conn`): dropped with it.
const peers = new WeakMap<Duplex, PeerInfo | typeof TCP>()

/** Called by each listener before it hands `stream` to the adapter. */
export function recordPeer (stream: Duplex, info: PeerInfo): void {
  peers.set(stream, info)
}

/**
 * {@link recordPeer} for a plain TCP connection, with nothing allocated for
 * it: its remote address is read from the socket when asked (Node keeps it
 * once read, after the socket closes too). One object less per idle
 * connection (docs/benchmarks.md "Idle connections").
 */
export function recordTcpPeer (socket: Socket): void {
  peers.set(socket, TCP)
}

/**
 * The listener's facts about a connection, by the stream the adapter was
 * handed (`client.conn` in an Aedes hook); undefined for a stream no
 * listener handed over.
 */
export function peerOf (stream: Duplex): PeerInfo | undefined {
  const info = peers.get(stream)
  if (info !== TCP) return info
  return { listener: TCP, remoteAddress: (stream as Socket).remoteAddress, certificateCN: undefined }
}

/** The subject CN of a TLS socket's client certificate, if it presented one that was verified. */
export function verifiedCertificateCN (socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined
  const cn: unknown = socket.getPeerCertificate().subject?.CN
  // A subject with several CNs is ambiguous as an identity: none is taken.
  return typeof cn === 'string' && cn !== '' ? cn : undefined
}
