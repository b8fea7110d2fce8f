#!/usr/bin/env node
// Must be first: libp2p calls Promise.withResolvers, missing on Node 20 (LIBP2P.md §0).
import '@damselfly/proto/polyfill'
import '@damselfly/proto/gc-tuning'
import { readFile } from 'node:fs/promises'
import { Command, CommanderError, Option } from 'commander'
import { pino } from 'pino'
import { envName, flagName, isDfError, LOG_REDACT, type ConfigSources } from '@damselfly/proto'
import { preheatCommand } from './cli/preheat-command.js'
import { loadSupernodeConfig, SUPERNODE_OPTIONS, type SupernodeConfig } from './config.js'
import { SUPERNODE_VERSION } from './metrics.js'
import { createSupernode } from './supernode.js'

/** Exit status for configuration and usage errors (distinct from 1 = failed at runtime). */
const EXIT_USAGE = 2
/** stop() normally takes well under a second; past this, exit anyway so orchestrators are not stuck. */
const FORCE_EXIT_MS = 10_000

function buildProgram (): Command {
  const program = new Command('supernode')
    .description('Damselfly supernode: peer API, piece scheduler and back-to-source seed.\nEvery flag is also a YAML key (camelCase) and an env var (DAMSELFLY_*); precedence: flag > env > file > default.')
    .version(SUPERNODE_VERSION)
    .exitOverride()
  for (const spec of SUPERNODE_OPTIONS) {
    const help = `${spec.description} (default: ${spec.defaultText ?? 'none'}; env ${envName(spec.key)})`
    const option = new Option(`${flagName(spec.key)} <${spec.arg ?? 'VALUE'}>`, help)
    if (spec.repeatable === true) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value])
    program.addOption(option)
  }
  program.addCommand(preheatCommand())
  return program
}

async function readConfigFile (path: string | undefined): Promise<ConfigSources['file']> {
  if (path === undefined) return undefined
  try {
    return { path, text: await readFile(path, 'utf8') }
  } catch (err) {
    throw new Error(`cannot read config file ${path}: ${(err as Error).message}`)
  }
}

async function run (opts: Record<string, unknown>): Promise<void> {
  // Step 1: configuration, all problems reported at once.
  const { config: configFlag, ...flags } = opts
  let config: SupernodeConfig
  try {
    const file = await readConfigFile((configFlag as string | undefined) ?? process.env[envName('config')])
    config = loadSupernodeConfig({ ...(file === undefined ? {} : { file }), env: process.env, flags })
  } catch (err) {
    process.stderr.write(`supernode: ${isDfError(err) ? err.message : (err as Error).message}\n`)
    process.exit(EXIT_USAGE)
  }

  // Step 2: the root logger, injected downward; credentials never reach the output.
  const logger = pino({
    level: config.logLevel,
    base: { name: 'supernode', pid: process.pid },
    redact: { paths: [...LOG_REDACT.paths], censor: LOG_REDACT.censor }
  })
  process.on('unhandledRejection', err => { logger.error({ err }, 'unhandled promise rejection') })

  // Step 3: start, then stop cleanly on SIGTERM/SIGINT.
  const supernode = createSupernode(config, { logger })
  let stopping = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return
    stopping = true
    logger.info({ signal }, 'stopping')
    setTimeout(() => { logger.error('stop timed out; exiting'); process.exit(1) }, FORCE_EXIT_MS).unref()
    supernode.stop().then(() => { process.exit(0) }, (err: unknown) => {
      logger.error({ err }, 'error while stopping')
      process.exit(1)
    })
  }
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
  try {
    await supernode.start()
  } catch (err) {
    logger.fatal({ err }, 'supernode failed to start')
    await supernode.stop().catch(() => { /* best effort: we are exiting with the start error anyway */ })
    process.exit(1)
  }
}

const program = buildProgram().action(async (opts: Record<string, unknown>) => { await run(opts) })
try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    // --help and --version end through here with exit code 0; usage errors were already printed.
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE)
  }
  throw err
}
