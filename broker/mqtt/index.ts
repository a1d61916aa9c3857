// The Aedes adapter's surface (docs/mqtt-adapter.md). Only broker/mqtt/ may
// import 'aedes' (eslint.config.js); the Broker's public API still names
// Aedes's types, so they are passed on from here.
export type { Aedes, PublishPacket as AedesPublishPacket } from 'aedes'
export { allowAll, type AccessPolicy, type Verdict } from './access.js'
export type { FaultProbe, HookName } from './guard.js'
export { MqttAdapter, type MqttAdapterOptions, type MqttServices, type SessionStats, type Traffic, type ByQos } from './adapter.js'
export { ConnectedClients, type ConnectedClient } from './connected-clients.js'
