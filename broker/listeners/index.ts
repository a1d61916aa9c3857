import type { Duplex } from 'node:stream'
import { ConfigError } from '../../protocol/errors.js'
import type { Logger } from 'pino'
import type { Closers } from '../closers.js'
import type { TlsOptions, WsOptions, WssOptions } from '../generated/config-types.js'
import type { Intake, Listener, ListenerInfo } from './bind.js'
import type { TlsMaterial } from './tls-material.js'

export type { Intake, Listener, ListenerInfo } from './bind.js'
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
  if (options.tls.certificateIdentity === true && options.tls.ca === undefined) {
    throw new ConfigError('tls.ca', 'is required when tls.certificateIdentity is true (only a certificate verified against it names a user)')
  }
  if (options.tls.port === undefined && options.wss.port === undefined) return undefined
  // Loaded only when needed, as the listeners below: docs/benchmarks.md, "The broker's RSS".
  const { loadTlsMaterial } = await import('./tls-material.js')
  return await loadTlsMaterial(options.tls)
}

/** A listener besides TCP that the options turn on. */
export interface ConfiguredListener {
  kind: 'mqtts' | 'ws' | 'wss'
  host: string
  port: number
}

/**
 * The TLS, WebSocket and secure WebSocket listeners the options turn on
 * (each is off unless its port is set), each with its host: its own `host`,
 * else the top-level one. What is opened and what the loopback check of
 * authentication looks at (docs/security.md) both come from here.
 */
export function configuredListeners (options: ExtraListenerOptions): ConfiguredListener[] {
  const on: ConfiguredListener[] = []
  if (options.tls.port !== undefined) on.push({ kind: 'mqtts', host: options.tls.host ?? options.host, port: options.tls.port })
  if (options.ws.port !== undefined) on.push({ kind: 'ws', host: options.ws.host ?? options.host, port: options.ws.port })
  if (options.wss.port !== undefined) on.push({ kind: 'wss', host: options.wss.host ?? options.host, port: options.wss.port })
  return on
}

/**
 * Opens the {@link configuredListeners}, registering each one's closers as it
 * opens. Each listener's module (with `ws` and node's HTTP, HTTPS and TLS
 * servers) is loaded only when that listener is on: once loaded, code stays
 * in the heap, run or not (docs/benchmarks.md, "The broker's RSS").
 */
export async function openExtraListeners (
  options: ExtraListenerOptions, material: TlsMaterial | undefined,
  handle: (stream: Duplex) => void, intake: Intake, closers: Closers, logger: Logger
): Promise<ListenerInfo[]> {
  const opened: ListenerInfo[] = []
  const add = (listener: Listener): void => {
    closers.add('intake', `${listener.kind} listener`, () => { listener.stopAccepting() })
    closers.add('connections', `${listener.kind} listener`, () => listener.close())
    opened.push({ kind: listener.kind, host: listener.host, port: listener.port })
  }
  for (const { kind, host, port } of configuredListeners(options)) {
    if (kind === 'ws') add(await (await import('./websocket.js')).listenWebSocket(handle, port, host, undefined, intake, logger))
    // prepareTls read the material whenever a TLS or WSS port is set.
    else if (material !== undefined) {
      add(kind === 'mqtts'
        ? await (await import('./tls.js')).listenTls(handle, port, host, material, intake, logger)
        : await (await import('./websocket.js')).listenWebSocket(handle, port, host, material, intake, logger))
    }
  }
  return opened
}
