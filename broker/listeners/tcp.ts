import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { ErrorCodes, ListenError } from '../../protocol/errors.js'

export interface TcpListener {
  readonly server: Server
  readonly address: AddressInfo
  /** Stops accepting connections; open ones are closed by the broker. */
  close (): Promise<void>
}

/** A plain TCP listener handing each connection to Aedes. */
export async function listenTcp (handle: (socket: Socket) => void, port: number, host: string): Promise<TcpListener> {
  const server = createServer((socket) => {
    // Nagle's algorithm holds small writes back for tens of milliseconds,
    // which doubles QoS 1 round trips (docs/benchmarks.md).
    socket.setNoDelay(true)
    handle(socket)
  })
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
  let closing: Promise<void> | null = null
  return {
    server,
    address: server.address() as AddressInfo,
    close () {
      closing ??= new Promise<void>((resolve) => server.close(() => resolve()))
      return closing
    }
  }
}
