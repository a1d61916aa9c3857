import type { Route } from './router.js'
import type { JsonSchema } from './schemas.js'
import { problemSchema } from './view-schemas.js'

/*
 * The OpenAPI 3.1 document of GET /api/openapi.json, made from the route
 * table: every route's path, access, query, body and answer schemas, the
 * very ones requests are checked against (./schemas.ts).
 */

const PROBLEM_REF = { $ref: '#/components/responses/Problem' }

export function openApiDocument (routes: readonly Route[], version: string): JsonSchema {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const route of routes) {
    if (route.internal === true) continue
    const item = paths[route.path] ??= {}
    item[route.method.toLowerCase()] = operation(route)
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'fleetq admin API',
      version,
      description: 'The broker\'s HTTP admin API, metrics and health (docs/operations.md). With a users file, `read` (any user, ' +
        'or the bearer token) may GET; other methods need `admin` (users in auth.admins). Every non-GET request needs ' +
        '`Content-Type: application/json`. Errors are problem+json (RFC 9457).'
    },
    paths,
    components: {
      securitySchemes: {
        basic: { type: 'http', scheme: 'basic', description: 'A user of the users file (auth.usersFile).' },
        bearer: { type: 'http', scheme: 'bearer', description: 'http.token: reads only.' }
      },
      schemas: { Problem: problemSchema },
      responses: {
        Problem: {
          description: 'A refusal or an error, as problem+json',
          content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } }
        }
      }
    }
  }
}

function operation (route: Route): Record<string, unknown> {
  const parameters: unknown[] = []
  for (const [, name] of route.path.matchAll(/\{(\w+)\}/g)) {
    parameters.push({ name, in: 'path', required: true, schema: { type: 'string' }, description: 'URL-encoded' })
  }
  const query = route.query
  if (query !== undefined) {
    const required = new Set((query['required'] as string[] | undefined) ?? [])
    for (const [name, schema] of Object.entries((query['properties'] ?? {}) as Record<string, JsonSchema>)) {
      parameters.push({ name, in: 'query', required: required.has(name), schema })
    }
  }
  const { status, schema, contentType, description } = route.response
  const answer = status === 204 || (schema === undefined && contentType === undefined)
    ? { description }
    : { description, content: { [contentType ?? 'application/json']: schema === undefined ? {} : { schema } } }
  return {
    operationId: operationId(route),
    summary: route.summary,
    tags: [route.tag],
    'x-fleetq-access': route.access,
    ...(route.access === 'open' ? { security: [] } : { security: route.access === 'admin' ? [{ basic: [] }] : [{ basic: [] }, { bearer: [] }] }),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(route.body !== undefined ? { requestBody: { required: true, content: { 'application/json': { schema: route.body } } } } : {}),
    responses: { [String(status)]: answer, default: PROBLEM_REF }
  }
}

/** `GET /api/groups/{key}/pause` → `getApiGroupsKeyPause`. */
function operationId (route: Route): string {
  const words = route.path.split(/[^A-Za-z0-9]+/).filter((word) => word !== '')
  return route.method.toLowerCase() + words.map((word) => word[0]!.toUpperCase() + word.slice(1)).join('')
}
