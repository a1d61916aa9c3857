import type { ServerResponse } from 'node:http'
import type { Registry } from 'prom-client'
import type { DashboardFiles, StaticFile } from './static-files.js'
import type { Reply, Route } from './router.js'

/*
 * The listener's other routes (docs/operations.md): health and readiness for
 * supervisors, Prometheus metrics, and the dashboard's files.
 */

export interface OpsEndpoints {
  metrics: Registry
  /** Listening, with the store open, and not closing. */
  ready: () => boolean
  dashboard: DashboardFiles
}

const text = (status: number, body: string): Reply => ({ status, text: body, contentType: 'text/plain; charset=utf-8' })
const plainText = { status: 200, contentType: 'text/plain', description: 'Plain text' }

export function opsRoutes ({ metrics, ready, dashboard }: OpsEndpoints): Route[] {
  const file = { status: 200, contentType: 'text/html', description: 'The dashboard' }
  return [
    {
      method: 'GET', path: '/healthz', access: 'open', tag: 'operations', summary: 'Answers 200 while the process is alive',
      response: plainText,
      handle: () => text(200, 'ok\n')
    },
    {
      method: 'GET', path: '/readyz', access: 'open', tag: 'operations', summary: '200 while the broker accepts MQTT clients, 503 once it closes',
      response: plainText,
      handle: () => ready() ? text(200, 'ready\n') : text(503, 'not ready\n')
    },
    {
      method: 'GET', path: '/metrics', access: 'read', tag: 'operations', summary: 'Prometheus metrics (text format 0.0.4)',
      response: { status: 200, contentType: 'text/plain; version=0.0.4', description: 'Prometheus exposition' },
      handle: async () => ({ status: 200, text: await metrics.metrics(), contentType: metrics.contentType })
    },
    {
      method: 'GET', path: '/', access: 'open', tag: 'dashboard', summary: 'The dashboard', internal: true, response: file,
      handle: async ({ res }) => send(res, await dashboard.index())
    },
    {
      method: 'GET', path: '/index.html', access: 'open', tag: 'dashboard', summary: 'The dashboard', internal: true, response: file,
      handle: async ({ res }) => send(res, await dashboard.index())
    },
    {
      method: 'GET', path: '/assets/{file}', access: 'open', tag: 'dashboard', summary: 'A file of the dashboard', internal: true, response: file,
      handle: async ({ res, params }) => send(res, await dashboard.asset(params['file']!))
    },
    {
      method: 'GET', path: '/vendor/{name}', access: 'open', tag: 'dashboard', summary: 'A browser module the dashboard imports', internal: true, response: file,
      handle: async ({ res, params }) => send(res, await dashboard.vendor(params['name']!))
    }
  ]
}

function send (res: ServerResponse, file: StaticFile): Reply {
  res.writeHead(200, { 'content-type': file.contentType, 'cache-control': file.cacheControl, 'content-length': file.body.length })
  res.end(file.body)
  return 'handled'
}
