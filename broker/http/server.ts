import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { ErrorCodes } from '../../protocol/errors.js'
import type { AdminApi } from '../admin/admin-api.js'
import { bindServer } from '../listeners/bind.js'
import type { HttpAccess } from './access.js'
import { apiRoutes } from './api-routes.js'
import { readJsonBody, requireJsonContentType } from './body.js'
import { EventStreams } from './events.js'
import { openApiDocument } from './openapi.js'
import { opsRoutes } from './ops-routes.js'
import { HttpProblem, isKnownRefusal, sendProblem } from './problem.js'
import { Router, type Reply, type RequestContext, type Route } from './router.js'
import { checkBody, checkQuery } from './schemas.js'
import { DashboardFiles, packageDashboardDir } from './static-files.js'

export interface HttpEndpoints {
  admin: AdminApi
  metrics: Registry
  /** Listening, with the store open, and not closing. */
  ready: () => boolean
  access: HttpAccess
  logger: Logger
  /** For the OpenAPI document's `info.version`. */
  version: string
  /** The dashboard's folder; unset, the package's dashboard/ (null: none, its routes answer 404). */
  dashboardDir?: string | null
}

export interface HttpListener {
  readonly address: AddressInfo
  /** Ends the open server-sent event streams (close phase `intake`); streams asked for later end at once. */
  endStreams (): void
  /** Ends the streams and every connection, and releases the port. Idempotent. */
  close (): Promise<void>
}

/**
 * The HTTP listener (docs/operations.md): `/healthz`, `/readyz`, `/metrics`,
 * the admin API under `/api/`, and the dashboard at `/`. One route table
 * (./router.ts) decides access, checks input and feeds the OpenAPI document;
 * every refusal is problem+json, and no request can crash the broker.
 */
export async function listenHttp (endpoints: HttpEndpoints, port: number, host: string): Promise<HttpListener> {
  const { admin, access, logger } = endpoints
  const streams = new EventStreams(logger)
  const dashboard = new DashboardFiles(endpoints.dashboardDir === undefined ? packageDashboardDir() : endpoints.dashboardDir)
  await dashboard.prepare()
  const routes: Route[] = [...opsRoutes({ ...endpoints, dashboard }), ...apiRoutes(admin, streams)]
  let document: unknown
  routes.push({
    method: 'GET', path: '/api/openapi.json', access: 'open', tag: 'operations', summary: 'This document',
    response: { status: 200, schema: { type: 'object' }, description: 'OpenAPI 3.1' },
    handle: () => ({ status: 200, json: document ??= openApiDocument(routes, endpoints.version) })
  })
  const router = new Router(routes)

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Only a failure to write the answer itself gets here.
      logger.error({ err }, 'http request failed')
      res.destroy()
    })
  })

  async function handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/'
    // The path is matched as sent (still encoded, not normalised by URL), so `..` and `%2F` reach no file.
    const queryAt = url.indexOf('?')
    const path = queryAt < 0 ? url : url.slice(0, queryAt)
    res.setHeader('x-content-type-options', 'nosniff')
    res.setHeader('x-frame-options', 'DENY')
    res.setHeader('referrer-policy', 'no-referrer')
    res.setHeader('content-security-policy', dashboard.contentSecurityPolicy())
    const method = req.method ?? 'GET'
    try {
      const { route, params } = router.match(method, path)
      const caller = route.access === 'open' ? null : await access.identify(req.headers)
      const reads = method === 'GET' || method === 'HEAD'
      if (caller !== null && caller.role !== 'admin' && (route.access === 'admin' || !reads)) {
        throw new HttpProblem(403, ErrorCodes.FORBIDDEN, `${caller.user === null ? 'the bearer token' : `user "${caller.user}"`} may only read`)
      }
      const query = checkQuery(route.query, new URLSearchParams(queryAt < 0 ? '' : url.slice(queryAt + 1)))
      let body: unknown = {}
      if (!reads) {
        requireJsonContentType(req)
        body = await readJsonBody(req)
        if (route.body !== undefined) body = checkBody(route.body, body)
      }
      const context: RequestContext = { req, res, path, params, query, body, caller }
      reply(res, await route.handle(context))
    } catch (err) {
      if (!isKnownRefusal(err)) logger.error({ err, method, path }, 'http request failed')
      // A refused request body is not read: close the connection rather than parse what follows as a request.
      if (!req.complete) res.setHeader('connection', 'close')
      sendProblem(res, err, path)
    }
  }

  const address = await bindServer(server, port, host)
  let closing: Promise<void> | null = null
  return {
    address,
    endStreams () {
      streams.endAll()
    },
    close () {
      closing ??= new Promise<void>((resolve) => {
        streams.endAll()
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    }
  }
}

function reply (res: ServerResponse, answer: Reply): void {
  if (answer === 'handled') return
  if ('text' in answer) {
    res.writeHead(answer.status, { 'content-type': answer.contentType, 'cache-control': 'no-store' }).end(answer.text)
  } else if (answer.status === 204 || answer.json === undefined) {
    res.writeHead(answer.status).end()
  } else {
    res.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }).end(JSON.stringify(answer.json))
  }
}
