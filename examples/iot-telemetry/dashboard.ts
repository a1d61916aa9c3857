import type { Client } from '../../client/index.js'

export interface DeviceView { site: string, device: string, state?: unknown, readings: number }

/**
 * A dashboard: one wildcard subscription for every device's state (retained,
 * so it arrives on subscribe) and one for the telemetry. `+` captures the site
 * and device; the handler gets them as `params`.
 */
export class Dashboard {
  readonly devices = new Map<string, DeviceView>()

  static async start (client: Client): Promise<Dashboard> {
    const dashboard = new Dashboard()
    await client.subscribe('fleet/+/+/state', (message) => {
      dashboard.#view(message.params).state = message.json()
    }, { qos: 1 })
    await client.subscribe('fleet/+/+/telemetry', (message) => {
      dashboard.#view(message.params).readings++
    })
    return dashboard
  }

  #view ([site = '?', device = '?']: string[]): DeviceView {
    const key = `${site}/${device}`
    let view = this.devices.get(key)
    if (view === undefined) {
      view = { site, device, readings: 0 }
      this.devices.set(key, view)
    }
    return view
  }
}
