// fleetq and Mosquitto side by side: `npx tsx bench/compare.ts [options]` is
// `npm run bench -- --compare [options]`. Both brokers run as child processes
// (bench/brokers.ts, bench/mosquitto.ts) and are stopped at the end, also on
// error or Ctrl-C (bench/main.ts, bench/child.ts).
import { main } from './main.js'

process.exitCode = await main(['--compare', ...process.argv.slice(2)])
