import { parseUntrustedJson } from '../untrusted-json.js'

/**
 * MQTT 3.1.1 has no message properties, so the delivery count reaches workers
 * inside task envelopes (JSON objects with string `id` and `type`, see
 * schemas/): the broker sets `deliveryCount` on each send, so a worker can
 * dead-letter a message that keeps failing (docs/shared-subscriptions.md). Other payloads are sent
 * untouched; their redeliveries are marked by the DUP flag only.
 */
export function annotateDeliveries (payload: Buffer, deliveries: number, checkedEnvelope = false): Buffer {
  if (checkedEnvelope) return spliceDeliveryCount(payload, deliveries)
  if (payload.length < 2 || payload[0] !== 0x7b /* { */) return payload
  // Any message on a shared filter comes here: one a device made too deep to
  // stringify again, or otherwise odd, goes out untouched.
  const json = parseUntrustedJson(payload)
  if (!json.ok) return payload
  const parsed = json.value
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return payload
  const envelope = parsed as Record<string, unknown>
  if (typeof envelope['id'] !== 'string' || typeof envelope['type'] !== 'string') return payload
  envelope['deliveryCount'] = deliveries
  return Buffer.from(JSON.stringify(envelope))
}

/**
 * For an envelope the task gate parsed and checked on its way in (a JSON
 * object with string `id` and `type` and no `deliveryCount`,
 * broker/tasks/task-gate.ts): the count goes in before the closing brace,
 * with no parse. The same bytes JSON.stringify would give for a compact
 * envelope, at a copy's cost.
 */
function spliceDeliveryCount (payload: Buffer, deliveries: number): Buffer {
  const end = payload.lastIndexOf(0x7d /* } */)
  if (end < 1) return payload
  const tail = `,"deliveryCount":${deliveries}}`
  const out = Buffer.allocUnsafe(end + tail.length)
  payload.copy(out, 0, 0, end)
  out.write(tail, end, 'latin1')
  return out
}
