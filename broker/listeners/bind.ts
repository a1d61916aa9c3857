import type { AddressInfo, Server, Socket } from 'node:net'
import { ErrorCodes, ListenError } from '../../protocol/errors.js'
import type { ListenerKind } from './peer.js'

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
 * Binds `server` and tracks its raw sockets, so close() can end those
 * still open. Nagle is turned off on each, as on the TCP listener (tcp.ts).
 */
export async function listen (kind: ListenerKind, server: Server, port: number, host: string): Promise<Listener> {
  const sockets = new Set<Socket>()
  server.on('connection', (socket: Socket) => {
    socket.setNoDelay(true)
    sockets.add(socket)
    socket.once('close', () => sockets.delete(socket))
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
