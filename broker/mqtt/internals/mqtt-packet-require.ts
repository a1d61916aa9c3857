import { createRequire } from 'node:module'

/**
 * `require` as mqtt-packet's own code resolves it: its modules (`./parser`,
 * `./packet`) and its dependencies (`bl`, `debug`), which are not ours to
 * import. For the patches of mqtt-packet 9 (lean-parser.ts, quiet-debug.ts).
 */
export const requireFromMqttPacket = createRequire(createRequire(import.meta.url).resolve('mqtt-packet'))
