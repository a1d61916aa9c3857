import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { bindServer } from './bind.js'

export interface HttpEndpoints {
  metrics: Registry
  /** Listening, with the store open, and not closing. */
  ready: () => boolean
}

export interface HttpListener {
  readonly address: AddressInfo
  close (): Promise<void>
}

/**
 * The operations listener (docs/operations.md): `/healthz` answers while the
 * process is alive, `/readyz` only while the broker accepts MQTT clients,
 * `/metrics` in Prometheus's text format. Read-only, on loopback by default.
 */
export async function listenHttp (endpoints: HttpEndpoints, port: number, host: string): Promise<HttpListener> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n')
      return
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
    } else if (path === '/readyz') {
      const ready = endpoints.ready()
      res.writeHead(ready ? 200 : 503, { 'content-type': 'text/plain' }).end(ready ? 'ready\n' : 'not ready\n')
    } else if (path === '/metrics') {
      endpoints.metrics.metrics().then((text) => {
        res.writeHead(200, { 'content-type': endpoints.metrics.contentType }).end(text)
      }, (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${(err as Error).message}\n`)
      })
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n')
    }
  })
  const address = await bindServer(server, port, host)
  let closing: Promise<void> | null = null
  return {
    address,
    close () {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    }
  }
}
