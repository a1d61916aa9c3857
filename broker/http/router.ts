import type { IncomingMessage, ServerResponse } from 'node:http'
import { ErrorCodes } from '../../protocol/errors.js'
import type { Caller } from './access.js'
import { HttpProblem } from './problem.js'
import type { JsonSchema } from './schemas.js'

/*
 * A route table and a matcher, no framework: the listener has some thirty
 * fixed routes, and node:http with this small table keeps the broker's
 * dependencies (and what an audit must read) down. The same table feeds the
 * OpenAPI document (./openapi.ts), so the two cannot drift apart.
 */

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE'

/** Who may call a route: anyone, or a caller with at least this role (docs/operations.md). */
export type Access = 'open' | 'read' | 'admin'

/** What a handler gets: the request, its decoded path parameters, checked query and body, and its caller. */
export interface RequestContext {
  req: IncomingMessage
  res: ServerResponse
  /** The path as requested, without the query (the problem's `instance`). */
  path: string
  params: Record<string, string>
  /** The query, checked against the route's query schema (numbers already numbers). */
  query: Record<string, unknown>
  /** The body, checked against the route's body schema; `{}` when there is none. */
  body: unknown
  /** null on open routes. */
  caller: Caller | null
}

/**
 * What a handler answers: JSON with a status (204 sends no body), text, or
 * `handled` when it wrote the response itself (server-sent events, files).
 */
export type Reply =
  | { status: number, json?: unknown }
  | { status: number, text: string, contentType: string }
  | 'handled'

export interface Route {
  method: Method
  /** `/api/groups/{key}`: a `{name}` segment matches one URL-encoded segment. */
  path: string
  access: Access
  /** For the OpenAPI document. */
  summary: string
  tag: string
  /** Query parameters: an object schema whose properties are the parameters. */
  query?: JsonSchema
  /** The JSON request body. */
  body?: JsonSchema
  /** The success answer: its status, and its JSON schema or another content type. */
  response: { status: number, schema?: JsonSchema, contentType?: string, description: string }
  /** Left out of the OpenAPI document (the dashboard's files). */
  internal?: boolean
  handle: (ctx: RequestContext) => Reply | Promise<Reply>
}

/** A route found for a request, with its path parameters decoded. */
export interface Match {
  route: Route
  params: Record<string, string>
}

interface Compiled {
  route: Route
  segments: Array<{ literal: string } | { param: string }>
}

export class Router {
  readonly routes: readonly Route[]
  readonly #compiled: Compiled[]

  constructor (routes: readonly Route[]) {
    this.routes = routes
    this.#compiled = routes.map((route) => ({
      route,
      segments: route.path.split('/').slice(1).map((segment) => {
        const param = /^\{(\w+)\}$/.exec(segment)?.[1]
        return param === undefined ? { literal: segment } : { param }
      })
    }))
  }

  /**
   * The route for `method` and the raw (still encoded) `path`: a 404
   * HttpProblem when no route has that path, a 405 with `allow` when none has
   * that method. HEAD is answered as GET (node:http sends no body).
   */
  match (method: string, path: string): Match {
    const raw = path.split('/').slice(1)
    const allowed = new Set<string>()
    for (const { route, segments } of this.#compiled) {
      const params = matchSegments(segments, raw)
      if (params === null) continue
      if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { route, params: decodeParams(params) }
      allowed.add(route.method)
      if (route.method === 'GET') allowed.add('HEAD')
    }
    if (allowed.size === 0) throw new HttpProblem(404, ErrorCodes.NOT_FOUND, `no such endpoint: ${path}`)
    const allow = [...allowed].join(', ')
    throw new HttpProblem(405, ErrorCodes.METHOD_NOT_ALLOWED, `${method} is not allowed here; allowed: ${allow}`, { headers: { allow } })
  }
}

function matchSegments (segments: Compiled['segments'], raw: readonly string[]): Record<string, string> | null {
  if (segments.length !== raw.length) return null
  const params: Record<string, string> = {}
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!
    const value = raw[i]!
    if ('literal' in segment) {
      if (segment.literal !== value) return null
    } else {
      if (value === '') return null
      params[segment.param] = value
    }
  }
  return params
}

function decodeParams (params: Record<string, string>): Record<string, string> {
  const decoded: Record<string, string> = {}
  for (const [name, value] of Object.entries(params)) {
    try {
      decoded[name] = decodeURIComponent(value)
    } catch {
      throw new HttpProblem(400, ErrorCodes.REQUEST_INVALID, `path segment "${value}" is not valid percent-encoding`)
    }
  }
  return decoded
}
