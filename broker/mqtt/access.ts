import type { ClientInfo } from '../types/mqtt.js'

/** An answer now, or later. Synchronous answers cost the publish path nothing. */
export type Verdict = boolean | Promise<boolean>

/**
 * Who may connect, publish and subscribe: the hook points the
 * authentication and ACL work plugs into (docs/mqtt-adapter.md). The adapter
 * asks it first, before any other service sees the packet; a throw or a
 * rejected promise counts as a hook failure (refused, logged, counted in
 * `stats().hookErrors`), never as a yes.
 */
export interface AccessPolicy {
  /**
   * CONNECT. false refuses it with CONNACK 0x05, not authorized
   * [MQTT-3.2.2-5]; the connection is then closed.
   */
  authenticate (client: ClientInfo, username: string | undefined, password: Buffer | undefined): Verdict
  /**
   * A client's PUBLISH (the broker's own publishes are not asked). For
   * `$delayed/{seconds}/{topic}` it is asked about `{topic}`. false
   * disconnects the client: MQTT 3.1.1 has no negative PUBACK.
   */
  authorizePublish (client: ClientInfo, topic: string): Verdict
  /**
   * One filter of a SUBSCRIBE (a `$share/{group}/{filter}` whole); also each
   * subscription a persistent session restores on CONNECT. false grants it
   * 0x80 (MQTT 3.1.1 §3.9.3); the connection stays up.
   */
  authorizeSubscribe (client: ClientInfo, filter: string): Verdict
}

/** Today's policy: everyone may connect, publish and subscribe (the broker listens on 127.0.0.1 by default). */
export const allowAll: AccessPolicy = Object.freeze({
  authenticate: () => true,
  authorizePublish: () => true,
  authorizeSubscribe: () => true
})
