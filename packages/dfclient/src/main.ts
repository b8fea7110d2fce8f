#!/usr/bin/env node
import '@damselfly/proto/polyfill'
import '@damselfly/proto/gc-tuning'
import { readFile } from 'node:fs/promises'
import { Command, CommanderError, Option } from 'commander'
import { pino } from 'pino'
import { envName, flagName, isDfError, LOG_REDACT } from '@damselfly/proto'
import { DAEMON_OPTIONS, resolveDaemonConfig, type DaemonConfig } from './config.js'
import { registerCliCommands } from './cli/commands.js'
import { createDfclient, VERSION } from './dfclient.js'

/** Exit status for usage and configuration errors (CONTRACTS.md: rejected at start, all listed). */
const EXIT_USAGE = 2

async function loadConfig (flags: Record<string, unknown>): Promise<DaemonConfig> {
  const path = (flags.config as string | undefined) ?? process.env[envName('config')]
  let file: { path: string, text: string } | undefined
  if (path !== undefined && path !== '') {
    try {
      file = { path, text: await readFile(path, 'utf8') }
    } catch (err) {
      throw Object.assign(new Error(`invalid configuration:\n  - ${path}: cannot read: ${(err as Error).message}`), { usage: true })
    }
  }
  return resolveDaemonConfig({ ...(file === undefined ? {} : { file }), env: process.env, flags })
}

async function runDaemon (flags: Record<string, unknown>): Promise<void> {
  // A signal before the daemon exists just ends the process cleanly.
  const early = (): void => { process.exit(0) }
  process.once('SIGTERM', early)
  process.once('SIGINT', early)
  // Step 1: configuration — every problem reported at once, exit 2.
  let config: DaemonConfig
  try {
    config = await loadConfig(flags)
  } catch (err) {
    if (isDfError(err) || (err as { usage?: boolean }).usage === true) {
      process.stderr.write(`dfclient: ${(err as Error).message}\n`)
      process.exit(EXIT_USAGE)
    }
    throw err
  }

  // Step 2: the one root logger, injected downward.
  const logger = pino({
    level: config.logLevel,
    base: { name: 'dfclient', pid: process.pid },
    redact: { paths: [...LOG_REDACT.paths], censor: LOG_REDACT.censor }
  })

  // Step 3: start; signals stop gracefully (a second signal exits at once).
  const dfclient = createDfclient(config, { logger })
  let stopping = false
  const shutdown = (signal: string): void => {
    if (stopping) { process.exit(1) }
    stopping = true
    logger.info({ signal }, 'stopping')
    dfclient.stop().then(() => {
      logger.info('stopped')
      process.exit(0)
    }, (err: unknown) => {
      logger.error({ err }, 'stop failed')
      process.exit(1)
    })
  }
  process.off('SIGTERM', early)
  process.off('SIGINT', early)
  process.on('SIGTERM', () => { shutdown('SIGTERM') })
  process.on('SIGINT', () => { shutdown('SIGINT') })
  try {
    await dfclient.start()
  } catch (err) {
    logger.fatal({ err }, 'start failed')
    await dfclient.stop().catch(() => undefined)
    process.exit(1)
  }
}

function buildProgram (): Command {
  const program = new Command('dfclient')
    .description('Damselfly dfclient: per-node registry mirror and P2P peer')
    .version(VERSION)
    .exitOverride()
  const daemon = program.command('daemon').description('run the registry mirror and libp2p peer (flag > env DAMSELFLY_* > YAML file > default)')
  for (const spec of DAEMON_OPTIONS) {
    const option = new Option(`${flagName(spec.key)} <${spec.arg ?? 'VALUE'}>`, `${spec.description} (default: ${spec.defaultText ?? 'none'}; env ${envName(spec.key)}; YAML ${spec.key})`)
    if (spec.repeatable === true) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value])
    daemon.addOption(option)
  }
  daemon.action(async (opts: Record<string, unknown>) => { await runDaemon(opts) })
  registerCliCommands(program)
  return program
}

try {
  await buildProgram().parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE)
  process.stderr.write(`dfclient: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`)
  process.exit(1)
}
