/*
 * The MQTT shapes the broker's services see. Only broker/mqtt/ knows Aedes
 * (docs/mqtt-adapter.md); it maps Aedes's clients and packets onto these, so
 * the task gate, the shared groups, the journal, the scheduler and the coming
 * auth/ACL work can be written, tested and replaced without it.
 */

/** A PUBLISH as the services read and rewrite it (Aedes's packet fits this shape). */
export interface PublishPacket {
  cmd: 'publish'
  topic: string
  payload: Buffer | string
  qos: 0 | 1 | 2
  retain: boolean
  dup: boolean
  messageId?: number
}

/** A PUBLISH a service writes straight to one connection (shared-group deliveries). */
export interface OutgoingPublish {
  topic: string
  payload: Buffer
  qos: 0 | 1
  messageId?: number
  dup: boolean
}

/**
 * One client connection. The adapter hands out the same object for the whole
 * life of a connection, so services may key maps by it; a reconnect of the
 * same client id is a new Connection.
 */
export interface Connection {
  readonly id: string
  /** Open, and a packet written now goes out. */
  readonly writable: boolean
  /**
   * The next packet identifier of this connection, from the counter the
   * broker's own deliveries use, so the two never pick the same one while
   * both are in flight [MQTT-2.3.1-2].
   */
  nextPacketId (): number
  /** Writes a PUBLISH to the socket now, outside the client's queue; false if the connection cannot take it. */
  writePublish (packet: OutgoingPublish): boolean
  /**
   * Whether the access policy lets this client receive a message on `topic`
   * now (ACLs reload while it is connected): a group offers a message only to
   * members that may (docs/security.md).
   */
  mayReceive (topic: string): boolean
}

/** Who is asking, for the access policy (broker/mqtt/access.ts). */
export interface ClientInfo {
  /** The MQTT client id. */
  readonly id: string
  /** Whether the client asked for a clean session. */
  readonly clean: boolean
  /**
   * The user name the access policy accepted the CONNECT as (with a users
   * file: the verified user, docs/security.md). Undefined for anonymous
   * clients, including one that sent a user name no users file checked.
   */
  readonly username?: string
  /**
   * The subject CN of the client certificate the TLS listener verified, if
   * any; with `tls.certificateIdentity` it is the user name.
   */
  readonly certificateCN?: string
}
