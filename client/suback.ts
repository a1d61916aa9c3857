import { ErrorCodes, FleetqClientError } from '../protocol/errors.js'

/**
 * Sends SUBSCRIBE and turns a refusal into FLEETQ_SUBSCRIBE_REFUSED. mqtt.js 5
 * rejects `subscribeAsync` with an ErrorWithSubackPacket carrying the SUBACK
 * when a return code has the 0x80 bit [MQTT-3.9.3]; anything else (no SUBACK:
 * the connection went away) is FLEETQ_SUBSCRIBE_FAILED.
 */
export async function subscribeOrRefuse (subscribe: () => Promise<Array<{ qos: number }>>, filter: string): Promise<void> {
  let granted: Array<{ qos: number }>
  try {
    granted = await subscribe()
  } catch (err) {
    const granted = (err as { packet?: { granted?: unknown } }).packet?.granted
    if (Array.isArray(granted) && granted.some((rc) => typeof rc === 'number' && (rc & 0x80) !== 0)) throw refused(filter, err)
    throw new FleetqClientError(ErrorCodes.SUBSCRIBE_FAILED, `subscribe to "${filter}" failed: ${(err as Error).message}`, { cause: err })
  }
  if (granted.some((g) => (g.qos & 0x80) !== 0)) throw refused(filter)
}

function refused (filter: string, cause?: unknown): FleetqClientError {
  return new FleetqClientError(ErrorCodes.SUBSCRIBE_REFUSED, `the broker refused the subscription to "${filter}" (SUBACK 0x80)`, { cause })
}
