import type { AedesPublishPacket, Client } from 'aedes'
import mqttPacket from 'mqtt-packet'
import type { QueueWriter } from '../../persistence/level-persistence.js'
import type { StoredPacket } from '../../persistence/packet-codec.js'
import { nextMessageId } from './packet-ids.js'

/*
 * Relies on Aedes internals (tripwires: test/aedes-tripwires.test.ts, "packet
 * ids and raw writes"; test/backlog-order.test.ts): what lib/handlers/
 * connect.js `emptyQueue` does per queued packet (a QoSPacket keeps a stored
 * packet identifier or takes `client._nextId`, `persistence.outgoingUpdate`,
 * `authorizeForward`, lib/write.js `writeToStream` to `client.conn`), done for
 * a whole range of the queue per turn by the persistence's drain writer
 * (LevelPersistence `#drain`, docs/durability.md "Draining a backlog").
 */

type Forward = (client: Client, packet: AedesPublishPacket) => AedesPublishPacket | null

/**
 * As lib/write.js checks: the queue goes out during CONNECT's series, before
 * Aedes sets `connected` (so packet-ids.ts `isWritable` would say no).
 */
function isWritable (client: Client): boolean {
  const c = client as Client & { connecting: boolean, connected: boolean, closed: boolean }
  return (c.connecting || c.connected) && !c.closed
}

/** The drain writer's access to Aedes's client objects; `forward` is the broker's `authorizeForward` hook. */
export function createQueueWriter (forward: Forward): QueueWriter {
  return {
    nextPacketId: (client) => nextMessageId(client as Client),

    write (ref, packet: StoredPacket) {
      const client = ref as Client
      if (!isWritable(client)) return 'closed'
      let out: object = packet
      if (packet.cmd === 'publish') {
        const forwarded = forward(client, packet as unknown as AedesPublishPacket)
        if (forwarded === null) return 'withheld'
        out = forwarded
      }
      try {
        mqttPacket.writeToStream(out as mqttPacket.Packet, client.conn)
      } catch {
        return 'closed'
      }
      return 'sent'
    },

    async writable (ref) {
      const client = ref as Client
      if (!isWritable(client)) return false
      const conn = client.conn as Client['conn'] & { writableNeedDrain?: boolean }
      if (conn.writableNeedDrain !== true) return true
      return await new Promise<boolean>((resolve) => {
        const done = (ok: boolean): void => {
          conn.off('drain', onDrain)
          conn.off('close', onClose)
          resolve(ok)
        }
        const onDrain = (): void => { done(true) }
        const onClose = (): void => { done(false) }
        conn.once('drain', onDrain)
        conn.once('close', onClose)
      })
    }
  }
}
