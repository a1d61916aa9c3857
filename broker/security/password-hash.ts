import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'

/**
 * Password hashes of the users file (docs/security.md): scrypt (RFC 7914)
 * from Node's crypto, written as one self-describing string
 *
 *   $scrypt$N=16384,r=8,p=1$<salt, base64>$<derived key, base64>
 *
 * so the cost can be raised later without breaking existing lines: each line
 * is verified with the parameters it names.
 */
export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  N: number
  /** Block size. */
  r: number
  /** Parallelisation. */
  p: number
}

/**
 * OWASP's minimum for scrypt (N=2^14, r=8, p=1): about 16 MiB and tens of
 * milliseconds per check, paid once per CONNECT.
 */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ N: 16384, r: 8, p: 1 })

const SALT_BYTES = 16
const KEY_BYTES = 32
/**
 * Bounds on what a users file may ask for: a line with N=2^30 would make
 * every CONNECT for that user allocate a gigabyte.
 */
const MAX_N = 1 << 20
const MAX_R = 32
const MAX_P = 16
const MIN_KEY_BYTES = 16
const MAX_KEY_BYTES = 64

export interface ParsedHash extends ScryptParams {
  salt: Buffer
  key: Buffer
}

const FORMAT = /^\$scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/

/** Reads a hash string; throws an Error saying what is wrong with it (never echoing it). */
export function parseHash (encoded: string): ParsedHash {
  const match = FORMAT.exec(encoded)
  if (match === null) throw new Error('not a $scrypt$N=…,r=…,p=…$salt$hash string')
  const [N, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])]
  checkParams({ N, r, p })
  const salt = Buffer.from(match[4] ?? '', 'base64')
  const key = Buffer.from(match[5] ?? '', 'base64')
  if (salt.length < 8) throw new Error('the salt is shorter than 8 bytes')
  if (key.length < MIN_KEY_BYTES || key.length > MAX_KEY_BYTES) throw new Error(`the hash must be ${MIN_KEY_BYTES} to ${MAX_KEY_BYTES} bytes`)
  return { N, r, p, salt, key }
}

function checkParams ({ N, r, p }: ScryptParams): void {
  if (!Number.isSafeInteger(N) || N < 2 || N > MAX_N || (N & (N - 1)) !== 0) throw new Error(`N must be a power of two from 2 to ${MAX_N}`)
  if (!Number.isSafeInteger(r) || r < 1 || r > MAX_R) throw new Error(`r must be from 1 to ${MAX_R}`)
  if (!Number.isSafeInteger(p) || p < 1 || p > MAX_P) throw new Error(`p must be from 1 to ${MAX_P}`)
}

/** A new hash of `password` with a fresh random salt. */
export async function hashPassword (password: string | Buffer, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  checkParams(params)
  const salt = randomBytes(SALT_BYTES)
  const key = await derive(password, salt, KEY_BYTES, params)
  return `$scrypt$N=${params.N},r=${params.r},p=${params.p}$${salt.toString('base64')}$${key.toString('base64')}`
}

/**
 * Whether `password` matches `hash`. The comparison is constant-time
 * (crypto.timingSafeEqual), so the time taken tells nothing about how much of
 * the derived key matched.
 */
export async function verifyPassword (password: string | Buffer, hash: ParsedHash): Promise<boolean> {
  const key = await derive(password, hash.salt, hash.key.length, hash)
  return timingSafeEqual(key, hash.key)
}

function derive (password: string | Buffer, salt: Buffer, length: number, { N, r, p }: ScryptParams): Promise<Buffer> {
  // scrypt needs 128·N·r bytes; Node refuses above maxmem (32 MiB by default).
  const options: ScryptOptions = { N, r, p, maxmem: 128 * N * r * 2 + 1024 * 1024 }
  return new Promise((resolve, reject) => {
    scrypt(password, salt, length, options, (err, key) => { if (err) reject(err); else resolve(key) })
  })
}
