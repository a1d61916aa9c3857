// IoT telemetry: simulated devices publish readings and retained state; a
// dashboard watches them all with wildcard subscriptions.
//   npm start                          (a broker on mqtt://localhost:1883)
//   npm run example:iot-telemetry      (FLEETQ_URL=mqtt://host:port to point elsewhere)
import { connect } from '../../client/index.js'
import { Dashboard } from './dashboard.js'
import { runDevice } from './device.js'

const url = process.env['FLEETQ_URL'] ?? 'mqtt://localhost:1883'
const sites = ['north', 'south']
const devicesPerSite = 3
const readingsPerDevice = 20

// Devices first, dashboard later: retained state is what it sees of the past.
const devices = await Promise.all(sites.flatMap((site) =>
  Array.from({ length: devicesPerSite }, async (_, i) => ({ site, id: `sensor-${i}`, client: await connect(url, { clientId: `${site}-sensor-${i}` }) }))))
await Promise.all(devices.map((d) => runDevice(d.client, d.site, d.id, readingsPerDevice)))

const dashboardClient = await connect(url, { clientId: 'dashboard' })
const dashboard = await Dashboard.start(dashboardClient)
const expected = sites.length * devicesPerSite
const deadline = Date.now() + 10_000
while ([...dashboard.devices.values()].filter((d) => d.state !== undefined).length < expected) {
  if (Date.now() > deadline) throw new Error('the dashboard did not get every device state in 10 s')
  await new Promise((resolve) => setTimeout(resolve, 20))
}

// live readings after the dashboard subscribed
await Promise.all(devices.map((d) => runDevice(d.client, d.site, d.id, 5)))
while ([...dashboard.devices.values()].reduce((n, d) => n + d.readings, 0) < expected * 5) {
  if (Date.now() > deadline) throw new Error('the dashboard did not get the live readings in 10 s')
  await new Promise((resolve) => setTimeout(resolve, 20))
}

for (const view of [...dashboard.devices.values()].sort((a, b) => `${a.site}/${a.device}`.localeCompare(`${b.site}/${b.device}`))) {
  console.log(`${view.site}/${view.device}: state ${JSON.stringify(view.state)}, ${view.readings} live readings`)
}
console.log(`dashboard saw ${dashboard.devices.size} devices`)
await Promise.all([dashboardClient, ...devices.map((d) => d.client)].map((c) => c.close()))
