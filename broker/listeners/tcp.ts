import { createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { bindServer, type Intake } from './bind.js'
import { recordTcpServer } from './peer.js'

export interface TcpListener {
  readonly server: Server
  readonly address: AddressInfo
  /** Stops accepting connections; open ones are closed by the broker. */
  close (): Promise<void>
}

/** A plain TCP listener handing each connection to Aedes, once the connection limits admit it. */
export async function listenTcp (handle: (socket: Socket) => void, port: number, host: string, intake: Pick<Intake, 'connections'>): Promise<TcpListener> {
  // Nagle's algorithm holds small writes back for tens of milliseconds,
  // which doubles QoS 1 round trips (docs/benchmarks.md): off on every
  // accepted socket, set by Node on the handle before the socket is made.
  const server = createServer({ noDelay: true }, (socket) => {
    // Refused before a byte of it is read: destroyed in this same tick.
    if (!intake.connections.admitSocket(socket)) return
    handle(socket)
  })
  recordTcpServer(server)
  const address = await bindServer(server, port, host)
  let closing: Promise<void> | null = null
  return {
    server,
    address,
    close () {
      closing ??= new Promise<void>((resolve) => server.close(() => resolve()))
      return closing
    }
  }
}
