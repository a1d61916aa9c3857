import type { AddressInfo, Server, Socket } from 'node:net'
import { ErrorCodes, ListenError } from '../../protocol/errors.js'
import type { AcceptedSocket } from '../security/connection-limits.js'
import type { LimitCounters } from '../security/limit-counters.js'
import type { ListenerKind } from './peer.js'

/**
 * What every listener applies to a connection before MQTT starts on it
 * (broker/index.ts builds it from `limits.*`).
 */
export interface Intake {
  /** Admits or refuses each raw TCP socket as it is accepted; a refused one is destroyed (broker/security/connection-limits.ts). */
  connections: { admitSocket (socket: AcceptedSocket): boolean }
  /** Where a TLS handshake or WebSocket upgrade that timed out, and an oversize WebSocket frame, are counted. */
  counters: LimitCounters
  /** `limits.connectTimeoutMs`: the most a TLS handshake, and an HTTP upgrade, may take (Aedes's connect timeout starts after them). */
  connectTimeoutMs: number
  /** `limits.maxPacketBytes`: the largest WebSocket message too. */
  maxPacketBytes: number
}

export interface ListenerInfo {
  readonly kind: ListenerKind
  /** The bound address (`127.0.0.1`, `::`...). */
  readonly host: string
  /** The bound port (the real one with port 0). */
  readonly port: number
}

export interface Listener extends ListenerInfo {
  /** Stops accepting connections (close phase `intake`). */
  stopAccepting (): void
  /**
   * Stops accepting and ends the sockets still open (close phase
   * `connections`: Aedes has disconnected its clients by then; what is left
   * never got that far, a TLS or WebSocket handshake for example).
   * Resolves once the port is released. Idempotent.
   */
  close (): Promise<void>
}

/** Binds `server`, mapping a failure to FLEETQ_PORT_IN_USE or FLEETQ_LISTEN_FAILED. */
export async function bindServer (server: Server, port: number, host: string): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const code = err.code === 'EADDRINUSE' ? ErrorCodes.PORT_IN_USE : ErrorCodes.LISTEN_FAILED
      const what = err.code === 'EADDRINUSE' ? 'is already in use' : `cannot be bound (${err.code ?? err.message})`
      reject(new ListenError(code, `port ${port} on ${host} ${what}`, { cause: err }))
    }
    server.once('error', onError)
    server.listen(port, host, () => {
      server.off('error', onError)
      resolve()
    })
  })
  return server.address() as AddressInfo
}

/**
 * Binds `server` (a TLS or HTTP(S) server) with the connection limits in
 * front of it, and tracks its raw sockets, so close() can end those still
 * open. Nagle is turned off on each, as on the TCP listener (tcp.ts).
 */
export async function listen (kind: ListenerKind, server: Server, port: number, host: string, intake: Intake): Promise<Listener> {
  const sockets = new Set<Socket>()
  admitFirst(server, (socket) => {
    if (!intake.connections.admitSocket(socket)) return false
    socket.setNoDelay(true)
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
    return true
  })
  const address = await bindServer(server, port, host)
  let stopped: Promise<void> | null = null
  const stopAccepting = (): Promise<void> => {
    stopped ??= new Promise<void>((resolve) => server.close(() => resolve()))
    return stopped
  }
  let closing: Promise<void> | null = null
  return {
    kind,
    host: address.address,
    port: address.port,
    stopAccepting () { void stopAccepting() },
    close () {
      closing ??= (async () => {
        const released = stopAccepting()
        for (const socket of sockets) socket.destroy()
        await released
      })()
      return closing
    }
  }
}

/**
 * Puts `admit` before whatever `server` does with a raw socket: the TLS
 * handshake and the HTTP parser are the 'connection' listeners Node's
 * tls.Server and http.Server register when created, and they now run only
 * for an admitted socket. A refused one never reaches them, so it costs no
 * handshake and logs no TLS error. (test/listeners.test.ts checks that a
 * refused socket gets no answer to its ClientHello.)
 */
function admitFirst (server: Server, admit: (socket: Socket) => boolean): void {
  const handlers = server.listeners('connection')
  server.removeAllListeners('connection')
  server.on('connection', (socket: Socket) => {
    if (!admit(socket)) return
    for (const handler of handlers) Reflect.apply(handler, server, [socket])
  })
}
