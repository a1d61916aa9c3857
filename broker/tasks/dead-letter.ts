import type { ValidationIssue } from '../../protocol/errors.js'
import type { GateDeadLetter, GateDeadLetterReason } from '../../protocol/messages.js'

/** A dead letter records why, not the whole of a payload that was refused for its size. */
export const MAX_KEPT_BYTES = 64 * 1024

export function deadLetterRecord (reason: GateDeadLetterReason, taskType: string, topic: string, clientId: string | null, issues: ValidationIssue[], original: Buffer): GateDeadLetter {
  const kept = original.length > MAX_KEPT_BYTES ? original.subarray(0, MAX_KEPT_BYTES) : original
  const record: GateDeadLetter = { reason, taskType, topic, clientId, issues, bytes: original.length, at: new Date().toISOString() }
  const text = decodeUtf8(kept, kept !== original)
  if (text !== null) record.payload = text
  else record.payloadBase64 = kept.toString('base64')
  if (kept !== original) record.truncated = true
  return record
}

/**
 * The text of `bytes`, or null if they are not UTF-8. With `cut`, a character
 * split by the cut at the end is left out rather than failing the whole.
 */
export function decodeUtf8 (bytes: Buffer, cut = false): string | null {
  try {
    // stream: true holds back an incomplete last character instead of throwing.
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes, { stream: cut })
  } catch {
    return null
  }
}
