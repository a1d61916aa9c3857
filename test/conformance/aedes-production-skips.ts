// Which tests of aedes-persistence's abstract suite are skipped in the
// production configuration, and why. Read by aedes-persistence.suite.ts
// (node:test) and test/persistence-conformance.test.ts (vitest).

const TAKEN = 'the queue stream ends only once Aedes has taken (outgoingUpdate) every packet it yielded, which this test never does'
const SENT = 'a packet already written on this connection (outgoingUpdate) is not streamed to it again'

/**
 * Abstract tests that contradict what `trackDeliveries` does on purpose (see
 * LevelPersistence.outgoingStream: in-order delivery on reconnect,
 * [MQTT-4.6.0-6], moscajs/aedes#649). Each runs as skipped, its reason in
 * its name; test/store-aedes-persistence.test.ts covers the same scenarios
 * the way Aedes drives the persistence (outgoingUpdate for each packet it
 * writes, a new client object per connection).
 */
export const PRODUCTION_SKIPS: Readonly<Record<string, string>> = {
  'add outgoing packet and stream it': TAKEN,
  'add outgoing packet for multiple subs and stream to all': TAKEN,
  'add outgoing packet as a string and stream': TAKEN,
  'add outgoing packet and stream it twice': TAKEN,
  'add outgoing packet as a string and pump': SENT,
  'add outgoing packet and update messageId': SENT,
  'add 2 outgoing packet and clear messageId': SENT,
  'add many outgoing packets and clear messageIds': SENT,
  'update to publish w/ same messageId': SENT,
  'update to pubrel': SENT
}

