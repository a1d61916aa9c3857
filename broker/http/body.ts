import type { IncomingMessage } from 'node:http'
import { ErrorCodes } from '../../protocol/errors.js'
import { HttpProblem } from './problem.js'

/** The largest request body read (docs/operations.md); a larger one is refused with 413 before it is all read. */
export const MAX_BODY_BYTES = 1024 * 1024

/**
 * Every request but GET and HEAD must say `Content-Type: application/json`:
 * an HTML form on another site can only send form encodings or text/plain
 * without a CORS preflight, which this server never grants, so the check
 * stops cross-site request forgery (docs/operations.md).
 */
export function requireJsonContentType (req: IncomingMessage): void {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json') {
    throw new HttpProblem(415, ErrorCodes.REQUEST_INVALID, 'the request needs Content-Type: application/json')
  }
}

/** Reads and parses the JSON body; an empty body is `{}`. */
export async function readJsonBody (req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? Number.NaN)
  if (declared > MAX_BODY_BYTES) throw tooLarge()
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > MAX_BODY_BYTES) throw tooLarge()
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return {}
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new HttpProblem(400, ErrorCodes.REQUEST_INVALID, `the body is not JSON: ${(err as Error).message}`, { cause: err })
  }
}

function tooLarge (): HttpProblem {
  // The rest of the body is not read: the connection closes after the answer.
  return new HttpProblem(413, ErrorCodes.REQUEST_INVALID, `the body is larger than ${MAX_BODY_BYTES} bytes`, { headers: { connection: 'close' } })
}
