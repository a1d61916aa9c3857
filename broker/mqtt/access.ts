import type { ClientInfo } from '../types/mqtt.js'

/** An answer now, or later. Synchronous answers cost the publish path nothing. */
export type Verdict = boolean | Promise<boolean>

/** CONNACK 0x04, bad user name or password (MQTT 3.1.1 §3.2.2.3). */
export const BAD_USERNAME_OR_PASSWORD = 4
/** CONNACK 0x05, not authorized (MQTT 3.1.1 §3.2.2.3). */
export const NOT_AUTHORIZED = 5

/**
 * A CONNECT answered in full: accepted, as `username` when a users file
 * vouched for it (then {@link ClientInfo.username} carries it to every later
 * check of that connection), or refused with the CONNACK code to send.
 */
export type Authentication =
  | { accepted: true, username?: string }
  | { accepted: false, returnCode: typeof BAD_USERNAME_OR_PASSWORD | typeof NOT_AUTHORIZED }

/** What `authenticate` answers: `true`/`false` (false is 0x05), or an {@link Authentication}; now or in a promise. */
export type AuthVerdict = boolean | Authentication | Promise<boolean | Authentication>

/**
 * Who may connect, publish and subscribe: the hook points the
 * authentication and ACL work plugs into (docs/mqtt-adapter.md). The adapter
 * asks it first, before any other service sees the packet; a throw or a
 * rejected promise counts as a hook failure (refused, logged, counted in
 * `stats().hookErrors`), never as a yes.
 */
export interface AccessPolicy {
  /**
   * CONNECT. false refuses it with CONNACK 0x05, not authorized; an
   * {@link Authentication} may refuse with 0x04 instead, or name the user
   * it accepted. A refused client gets its CONNACK and is then disconnected
   * [MQTT-3.2.2-5].
   */
  authenticate (client: ClientInfo, username: string | undefined, password: Buffer | undefined): AuthVerdict
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
  /**
   * Each message about to be written to a subscriber: live, retained, from a
   * persistent session's queue, or from a shared group. Synchronous: it runs
   * on every delivery. false withholds that one message from that client
   * (a queued copy is dropped; a group offers it to another member).
   */
  authorizeReceive (client: ClientInfo, topic: string): boolean
}

/** Everyone may connect, publish, subscribe and receive (what the adapter uses when given no policy). */
export const allowAll: AccessPolicy = Object.freeze({
  authenticate: () => true,
  authorizePublish: () => true,
  authorizeSubscribe: () => true,
  authorizeReceive: () => true
})
