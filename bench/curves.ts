// npm run bench:curves -- [--curves payload,subscribers,depth,connections] [--points ...] [--json]
// Scaling curves, fleetq against Mosquitto and BullMQ: bench/curves-main.ts.
import { main } from './curves-main.js'

process.exitCode = await main(process.argv.slice(2))
