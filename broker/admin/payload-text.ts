import { decodeUtf8 } from '../tasks/dead-letter.js'

/** Most payload bytes a view carries: a dashboard shows a message, it does not download it. */
export const MAX_SHOWN_BYTES = 64 * 1024

export interface PayloadText {
  bytes: number
  /** The text when UTF-8, else null and `payloadBase64`. */
  payload: string | null
  payloadBase64?: string
  truncated?: true
}

/** A payload for JSON: text when it is UTF-8, else base64; cut at {@link MAX_SHOWN_BYTES}. */
export function payloadText (payload: Buffer | string): PayloadText {
  const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(payload)
  const cut = bytes.length > MAX_SHOWN_BYTES
  const kept = cut ? bytes.subarray(0, MAX_SHOWN_BYTES) : bytes
  const text = decodeUtf8(kept, cut)
  const view: PayloadText = text === null
    ? { bytes: bytes.length, payload: null, payloadBase64: kept.toString('base64') }
    : { bytes: bytes.length, payload: text }
  if (cut) view.truncated = true
  return view
}
