/*
 * The admin HTTP API (docs/operations.md) as the dashboard calls it.
 * Credentials live in sessionStorage (gone when the tab closes) and go out as
 * HTTP Basic on every request, with `X-Requested-With: fleetq` so a 401 does
 * not make the browser show its own login pop-up. Mutations send
 * `Content-Type: application/json`, which the server requires of every
 * non-GET request (a cross-site HTML form cannot send it).
 */

const STORAGE_KEY = 'fleetq.basic'

/** A refused request, from the problem+json body (RFC 9457) when there is one. */
export class ApiError extends Error {
  constructor (status, code, detail, issues = []) {
    super(detail)
    this.name = 'ApiError'
    this.status = status
    this.code = code
    this.issues = issues
  }
}

/** Listeners told when the server answers 401: the credentials are missing or no longer valid. */
const onUnauthenticated = new Set()
export function whenUnauthenticated (listener) {
  onUnauthenticated.add(listener)
  return () => onUnauthenticated.delete(listener)
}

function base64 (text) {
  // btoa takes Latin-1 only: encode as UTF-8 first, as RFC 7617 §2.1 suggests.
  let binary = ''
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte)
  return btoa(binary)
}

export function saveCredentials (user, password) {
  sessionStorage.setItem(STORAGE_KEY, base64(`${user}:${password}`))
}

export function clearCredentials () {
  sessionStorage.removeItem(STORAGE_KEY)
}

export function hasCredentials () {
  return sessionStorage.getItem(STORAGE_KEY) !== null
}

/** Headers every request carries. */
export function authHeaders () {
  const headers = { 'X-Requested-With': 'fleetq' }
  const encoded = sessionStorage.getItem(STORAGE_KEY)
  if (encoded !== null) headers.Authorization = `Basic ${encoded}`
  return headers
}

async function problem (response) {
  let body = null
  try {
    body = await response.json()
  } catch {
    // not JSON: fall back to the status line
  }
  const detail = body?.detail ?? body?.title ?? `${response.status} ${response.statusText}`
  return new ApiError(response.status, body?.code ?? `HTTP_${response.status}`, detail, body?.issues ?? [])
}

/**
 * One API call: resolves with the JSON answer (null for 204), rejects with
 * an ApiError. `path` segments must already be encoded (see `segment`).
 */
export async function request (method, path, body) {
  const headers = authHeaders()
  const init = { method, headers, cache: 'no-store' }
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json'
    init.body = JSON.stringify(body ?? {})
  }
  const response = await fetch(path, init)
  if (response.status === 401) for (const listener of onUnauthenticated) listener()
  if (!response.ok) throw await problem(response)
  if (response.status === 204) return null
  return response.json()
}

export const get = (path) => request('GET', path)
export const post = (path, body) => request('POST', path, body)
export const del = (path) => request('DELETE', path)

/** One URL path segment: group keys hold `/`, client ids anything. */
export const segment = (value) => encodeURIComponent(value)

/** Checks credentials without announcing a 401 to the listeners: the login form's own call. */
export async function whoami () {
  const response = await fetch('/api/whoami', { headers: authHeaders(), cache: 'no-store' })
  if (!response.ok) throw await problem(response)
  return response.json()
}
