import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createSecureContext, type TlsOptions as NodeTlsOptions } from 'node:tls'
import { ConfigError } from '../../protocol/errors.js'
import type { TlsOptions } from '../generated/config-types.js'

/** The server side of TLS, shared by the `mqtts` and `wss` listeners. */
export type TlsMaterial = Pick<NodeTlsOptions, 'cert' | 'key' | 'ca' | 'requestCert' | 'rejectUnauthorized'>

/**
 * Reads and checks `tls.cert`, `tls.key` and `tls.ca` at start, so a wrong
 * file stops the broker with one ConfigError naming it (exit 2), not at the
 * first handshake.
 */
export async function loadTlsMaterial (tls: TlsOptions): Promise<TlsMaterial> {
  if (tls.cert === undefined) throw new ConfigError('tls.cert', 'is required when tls.port or wss.port is set')
  if (tls.key === undefined) throw new ConfigError('tls.key', 'is required when tls.port or wss.port is set')
  const requireCertificate = tls.requireCertificate === true
  if (requireCertificate && tls.ca === undefined) {
    throw new ConfigError('tls.ca', 'is required when tls.requireCertificate is true (client certificates are checked against it)')
  }
  const cert = await readPem('tls.cert', tls.cert)
  const key = await readPem('tls.key', tls.key)
  const ca = tls.ca === undefined ? undefined : await readPem('tls.ca', tls.ca)
  const certificate = parse('tls.cert', tls.cert, 'a PEM certificate', () => new X509Certificate(cert))
  const privateKey: KeyObject = parse('tls.key', tls.key, 'an unencrypted PEM private key', () => createPrivateKey(key))
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new ConfigError('tls.key', `${tls.key} is not the private key of the certificate in ${tls.cert}`)
  }
  if (ca !== undefined && tls.ca !== undefined) parse('tls.ca', tls.ca, 'a PEM certificate', () => new X509Certificate(ca))
  const material: TlsMaterial = {
    cert,
    key,
    ca,
    // With a CA a client may present a certificate; only a verified one gives an identity (peer.ts).
    requestCert: ca !== undefined,
    rejectUnauthorized: requireCertificate
  }
  // What OpenSSL still refuses (a broken certificate further down a chain or CA bundle).
  parse('tls', `${tls.cert}, ${tls.key}${tls.ca === undefined ? '' : `, ${tls.ca}`}`, 'usable for TLS', () => createSecureContext(material))
  return material
}

async function readPem (key: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path)
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (cause as Error).message
    throw new ConfigError(key, `cannot read ${path}: ${reason}`, { cause })
  }
}

function parse<T> (key: string, path: string, what: string, read: () => T): T {
  try {
    return read()
  } catch (cause) {
    throw new ConfigError(key, `${path} is not ${what}: ${(cause as Error).message}`, { cause })
  }
}
