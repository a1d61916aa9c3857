#!/usr/bin/env node
import { Command, CommanderError } from 'commander'
import type { Logger } from 'pino'
import { CONFIG_ENV, loadBrokerConfig, SETTINGS, valueAt, type BrokerConfig, type BrokerFlags } from './config.js'
import { ConfigError, ErrorCodes, FleetqError, ScheduleError } from '../protocol/errors.js'
import { addAdminCommands } from './cli/admin-commands.js'
import { createLogger } from './logger.js'
import { brokerDefaults } from './options.js'
import type { PasswdOptions } from './security/passwd.js'

/**
 * Exit codes (docs/configuration.md). Usage and config errors get their own
 * code because restarting cannot fix them: a supervisor can stop retrying
 * (systemd `RestartPreventExitStatus=2`).
 */
const EXIT_OK = 0
const EXIT_FAILED = 1
const EXIT_USAGE = 2

/** Where `fleetq broker` serves HTTP when `http.port` is unset (the admin commands' default --url). */
const DEFAULT_HTTP_PORT = 8080

function envHelp (): string {
  const flagWidth = Math.max(...SETTINGS.map((s) => s.flag.length)) + 2
  const envWidth = Math.max(...SETTINGS.map((s) => s.env.length)) + 2
  const rows = SETTINGS.map((s) => `  ${s.flag.padEnd(flagWidth)}${s.env.padEnd(envWidth)}${s.key}`)
  return [
    '',
    'Each setting, from strongest to weakest: flag, environment variable, config file key, default.',
    `  ${'flag'.padEnd(flagWidth)}${'environment'.padEnd(envWidth)}config key`,
    ...rows,
    `  ${'--config'.padEnd(flagWidth)}${CONFIG_ENV}`,
    '',
    'The config file takes every setting (schemas/broker-config.schema.json); see docs/configuration.md.'
  ].join('\n')
}

function buildProgram (): Command {
  const program = new Command('fleetq')
    .description('MQTT broker and durable task queue for fleets of IoT and edge devices')
    .exitOverride()
    // One line on stderr per error, like the broker's own errors.
    .configureOutput({
      outputError: (message, write) => write(`fleetq: ${oneLine(message.replace(/^error: /, ''))}\n`)
    })
    .showSuggestionAfterError(true)

  const broker = program.command('broker')
    .description('run the MQTT broker until SIGINT or SIGTERM')
  // One option per setting, its default read from the schema's defaults.
  for (const setting of SETTINGS) {
    const flags = `${setting.short === undefined ? '' : `${setting.short}, `}${setting.flag} ${setting.arg}`
    const fallback = valueAt(brokerDefaults, setting.key)
    broker.option(flags, fallback === undefined ? setting.help : `${setting.help} (default ${String(fallback)})`)
  }
  broker
    .option('-c, --config <file>', 'JSON config file: every setting above and the rest (schemas/broker-config.schema.json)')
    .addHelpText('after', envHelp())
    .action(async (flags: BrokerFlags) => {
      process.exit(await runBroker(flags))
    })

  program.command('passwd')
    .description('add a user to a users file or change a password (asked twice, echo off), like mosquitto_passwd')
    .argument('<file>', 'the users file (auth.usersFile, --users-file)')
    .argument('<user>', 'the user name')
    .argument('[password]', 'only with -b')
    .option('-c, --create', 'create the file, replacing one that exists')
    .option('-b, --batch', 'take the password from the command line (it shows in ps and shell history)')
    .option('-D, --delete', 'delete the user')
    .addHelpText('after', [
      '',
      'Without -b the password is asked for twice on the terminal, with echo off; when stdin',
      'is not a terminal its first line is the password (a second line, if any, must repeat it).',
      'The file is replaced atomically, mode 0600. A running broker reads it again on SIGHUP.'
    ].join('\n'))
    .action(async (file: string, user: string, password: string | undefined, options: PasswdOptions) => {
      process.exit(await runPasswd(file, user, password, options))
    })
  addAdminCommands(program)
  return program
}

/** `fleetq passwd`; errors are one line on stderr. Returns the exit code. */
async function runPasswd (file: string, user: string, password: string | undefined, options: PasswdOptions): Promise<number> {
  const { passwd, PasswdUsageError } = await import('./security/passwd.js')
  try {
    await passwd(file, user, password, options, { stdin: process.stdin, prompts: process.stderr })
    return EXIT_OK
  } catch (err) {
    process.stderr.write(`fleetq passwd: ${describe(err)}\n`)
    return err instanceof PasswdUsageError ? EXIT_USAGE : EXIT_FAILED
  }
}

/** Starts the broker, waits for a signal, closes it. Returns the exit code. */
async function runBroker (flags: BrokerFlags): Promise<number> {
  const { values, configFile } = await loadBrokerConfig(flags)
  const logger = createLogger(values.logLevel ?? brokerDefaults.logLevel, values.logFormat ?? brokerDefaults.logFormat)
  // Listen for signals before starting, so one during start-up still closes the store cleanly.
  const stopRequested = onShutdownSignal(logger)
  // SIGHUP reads the users and ACL files again (a bad one is logged and what
  // it held stays). Listened for from now on: its default action ends the process.
  let reload = (): void => { logger.info('SIGHUP before the broker started; the users and ACL files are read at start anyway') }
  process.on('SIGHUP', () => { reload() })
  // Loaded only now so that --help and config errors do not wait for Aedes and LevelDB to load.
  const { createBroker } = await import('./index.js')
  let broker
  try {
    broker = await createBroker({ ...values, http: httpListener(values.http), logger })
  } catch (err) {
    logger.debug({ err, configFile }, 'broker did not start')
    throw err
  }
  // Already logged by the broker, which survives these; an 'error' event with
  // no listener would crash the process instead.
  broker.on('error', () => undefined)
  const started = broker
  reload = () => { started.reloadAuth().catch(() => undefined) }
  await stopRequested
  try {
    await broker.close()
    return EXIT_OK
  } catch (err) {
    logger.error({ err }, 'broker did not close cleanly')
    return EXIT_FAILED
  }
}

/**
 * `fleetq broker` opens the HTTP listener (dashboard, admin API, /metrics) on
 * 8080 unless `http.enabled` is false; createBroker() opens one only when
 * given a port (docs/operations.md).
 */
function httpListener (http: BrokerConfig['http']): BrokerConfig['http'] {
  if (http?.enabled === false) {
    const { port: _port, ...rest } = http
    return rest
  }
  return { ...http, port: http?.port ?? DEFAULT_HTTP_PORT }
}

/** Resolves on the first SIGINT or SIGTERM; a second one while closing exits at once with 1. */
function onShutdownSignal (logger: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    let received = false
    const handler = (signal: NodeJS.Signals): void => {
      if (received) {
        logger.warn({ signal }, 'second signal while shutting down; exiting without a clean close')
        process.exit(EXIT_FAILED)
      }
      received = true
      logger.info({ signal }, 'shutting down')
      resolve()
    }
    process.on('SIGINT', handler)
    process.on('SIGTERM', handler)
  })
}

function exitCodeFor (err: unknown): number {
  // A refused config schedule or task schema is a configuration mistake too.
  const usage = err instanceof ConfigError || err instanceof ScheduleError ||
    (err instanceof FleetqError && err.code === ErrorCodes.SCHEMA_INVALID)
  return usage ? EXIT_USAGE : EXIT_FAILED
}

function describe (err: unknown): string {
  if (err instanceof FleetqError) return `${oneLine(err.message)} (${err.code})`
  return oneLine(err instanceof Error ? err.message : String(err))
}

/** Errors are one line on stderr, whatever a library put in its message. */
function oneLine (message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim()
}

async function main (argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv)
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help).
      process.exit(err.exitCode === 0 ? EXIT_OK : EXIT_USAGE)
    }
    process.stderr.write(`fleetq: ${describe(err)}\n`)
    process.exit(exitCodeFor(err))
  }
}

await main(process.argv)
