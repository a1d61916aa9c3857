// npm run bench -- [options]; see bench/options.ts or --help.
import { main } from './main.js'

process.exitCode = await main(process.argv.slice(2))
