import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { Closers } from '../closers.js'
import type { TlsOptions, WsOptions, WssOptions } from '../generated/config-types.js'
import type { Listener, ListenerInfo } from './bind.js'
import { listenTls } from './tls.js'
import { loadTlsMaterial, type TlsMaterial } from './tls-material.js'
import { listenWebSocket } from './websocket.js'

export type { Listener, ListenerInfo } from './bind.js'
export { peerOf, type ListenerKind, type PeerInfo } from './peer.js'

/** The settings of the listeners besides the TCP one (schemas/broker-config.schema.json). */
export interface ExtraListenerOptions {
  host: string
  tls: TlsOptions
  ws: WsOptions
  wss: WssOptions
}

/**
 * The TLS certificate, key and CA, read and checked, if a TLS or WSS
 * listener is configured. Called before anything is opened, so a bad file
 * stops the broker first.
 */
export async function prepareTls (options: ExtraListenerOptions): Promise<TlsMaterial | undefined> {
  if (options.tls.port === undefined && options.wss.port === undefined) return undefined
  return await loadTlsMaterial(options.tls)
}

/**
 * Opens the TLS, WebSocket and secure WebSocket listeners that are
 * configured (each is off unless its port is set), registering each one's
 * closers as it opens. Each listener's host is its own `host`, else the
 * top-level one.
 */
export async function openExtraListeners (
  options: ExtraListenerOptions, material: TlsMaterial | undefined,
  handle: (stream: Duplex) => void, closers: Closers, logger: Logger
): Promise<ListenerInfo[]> {
  const opened: ListenerInfo[] = []
  const add = (listener: Listener): void => {
    closers.add('intake', `${listener.kind} listener`, () => { listener.stopAccepting() })
    closers.add('connections', `${listener.kind} listener`, () => listener.close())
    opened.push({ kind: listener.kind, host: listener.host, port: listener.port })
  }
  const { tls, ws, wss } = options
  if (tls.port !== undefined && material !== undefined) {
    add(await listenTls(handle, tls.port, tls.host ?? options.host, material, logger))
  }
  if (ws.port !== undefined) {
    add(await listenWebSocket(handle, ws.port, ws.host ?? options.host, undefined, logger))
  }
  if (wss.port !== undefined && material !== undefined) {
    add(await listenWebSocket(handle, wss.port, wss.host ?? options.host, material, logger))
  }
  return opened
}
