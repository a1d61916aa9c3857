import { execFile } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { MqttClient } from 'mqtt'
import type { ISubackPacket, Packet } from 'mqtt-packet'
import { hashPassword } from '../../broker/security/password-hash.js'
import { writeUsersFile, type UsersFileEntry } from '../../broker/security/users-file.js'

/*
 * Files a secured broker reads (docs/security.md): a users file of scrypt
 * hashes, an ACL file in Mosquitto's format, and a test PKI made with the
 * openssl command at test time (as test/listeners.test.ts does).
 */

const run = promisify(execFile)

/** Writes a users file (mode 0600) with these users and passwords; resolves with its path. */
export async function writeUsers (path: string, users: Record<string, string>): Promise<string> {
  const entries: UsersFileEntry[] = []
  for (const [user, password] of Object.entries(users)) entries.push({ user, encoded: await hashPassword(password) })
  await writeUsersFile(path, entries)
  return path
}

/** Writes an ACL file, one rule a line; resolves with its path. */
export async function writeAcl (path: string, lines: readonly string[]): Promise<string> {
  await writeFile(path, `${lines.join('\n')}\n`)
  return path
}

/** A certificate and its key, as PEM files and their contents. */
export interface KeyPair {
  certFile: string
  keyFile: string
  cert: Buffer
  key: Buffer
}

/** A test CA, a server certificate for localhost and 127.0.0.1, and client certificates by name. */
export interface TestPki {
  ca: KeyPair
  server: KeyPair
  /** Signed by `ca`, subject CN as asked. */
  clients: Record<string, KeyPair>
  /** Signed by a CA the broker does not know, subject CN as asked. */
  strangers: Record<string, KeyPair>
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

async function read (certFile: string, keyFile: string): Promise<KeyPair> {
  const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)])
  return { certFile, keyFile, cert, key }
}

async function makeCa (dir: string, name: string): Promise<KeyPair> {
  const certFile = join(dir, `${name}.crt`)
  const keyFile = join(dir, `${name}.key`)
  await run('openssl', ['req', '-x509', ...EC, '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  return read(certFile, keyFile)
}

async function makeLeaf (dir: string, name: string, cn: string, ca: KeyPair, extensions: string, serial: number): Promise<KeyPair> {
  const certFile = join(dir, `${name}.crt`)
  const keyFile = join(dir, `${name}.key`)
  const csr = join(dir, `${name}.csr`)
  const ext = join(dir, `${name}.ext`)
  await writeFile(ext, `basicConstraints=CA:FALSE\n${extensions}\n`)
  // -subj takes `/` and `=` as separators: escape them in a CN.
  await run('openssl', ['req', ...EC, '-keyout', keyFile, '-out', csr, '-subj', `/CN=${cn.replace(/[/=+]/g, '\\$&')}`])
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-set_serial', String(serial), '-days', '2', '-out', certFile, '-extfile', ext])
  return read(certFile, keyFile)
}

/**
 * Makes a test PKI in `dir`: `clients` and `strangers` map a name to the
 * subject CN of its client certificate.
 */
export async function makeTestPki (dir: string, clients: Record<string, string>, strangers: Record<string, string> = {}): Promise<TestPki> {
  const ca = await makeCa(dir, 'fleetq-test-ca')
  let serial = 2
  const server = await makeLeaf(dir, 'server', 'localhost', ca, 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth', serial++)
  const clientAuth = 'extendedKeyUsage=clientAuth'
  const made: Record<string, KeyPair> = {}
  for (const [name, cn] of Object.entries(clients)) made[name] = await makeLeaf(dir, `client-${name}`, cn, ca, clientAuth, serial++)
  const foreign: Record<string, KeyPair> = {}
  if (Object.keys(strangers).length > 0) {
    const otherCa = await makeCa(dir, 'stranger-ca')
    for (const [name, cn] of Object.entries(strangers)) foreign[name] = await makeLeaf(dir, `stranger-${name}`, cn, otherCa, clientAuth, serial++)
  }
  return { ca, server, clients: made, strangers: foreign }
}

/**
 * Subscribes to `filters` in one SUBSCRIBE and resolves with the SUBACK's
 * return codes, 0x80 (128) for a refused filter (MQTT 3.1.1 §3.9.3).
 * mqtt.js 5's subscribeAsync rejects on 0x80, so the SUBACK is read as it arrives.
 */
export async function subscribeGranted (client: MqttClient, filters: readonly string[], qos: 0 | 1 | 2 = 1): Promise<number[]> {
  const suback = new Promise<ISubackPacket>((resolve) => {
    const onPacket = (packet: Packet): void => {
      if (packet.cmd === 'suback') {
        client.off('packetreceive', onPacket)
        resolve(packet)
      }
    }
    client.on('packetreceive', onPacket)
  })
  client.subscribe([...filters], { qos }, () => undefined)
  return (await suback).granted as number[]
}
