import type { Client } from '../../client/index.js'

export interface Reading { sensor: string, value: number, unit: string, at: string }

/**
 * A simulated device: publishes readings to `fleet/{site}/{device}/telemetry`
 * (QoS 0: a lost reading is replaced by the next one) and keeps its
 * last-known state retained on `fleet/{site}/{device}/state` (QoS 1), so a
 * dashboard that starts later still sees every device at once.
 */
export async function runDevice (client: Client, site: string, device: string, readings: number): Promise<void> {
  const base = `fleet/${site}/${device}`
  await client.publishJson(`${base}/state`, { online: true, firmware: '1.4.2', since: new Date().toISOString() }, { qos: 1, retain: true })
  for (let i = 0; i < readings; i++) {
    const reading: Reading = { sensor: 'temperature', value: 20 + Math.round(Math.sin(i) * 50) / 10, unit: 'C', at: new Date().toISOString() }
    await client.publishJson(`${base}/telemetry`, reading, { qos: 0 })
  }
  // the last reading becomes part of the retained state
  await client.publishJson(`${base}/state`, { online: true, firmware: '1.4.2', readings }, { qos: 1, retain: true })
}
