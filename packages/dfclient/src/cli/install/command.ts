import { resolve } from 'node:path'
import type { Command } from 'commander'
import { EXIT, loadSharedConfig, repeatable, reportError, sharedOptionalConfigSchema, UsageError } from '../common.js'
import { DEFAULT_CONFIG_PATHS, runInstall, type Runtime } from './install.js'

interface InstallFlags {
  runtime?: string
  configPath?: string
  mirror: string
  dryRun?: boolean
  uninstall?: boolean
  containerdConfig: string
  config?: string
  registry?: string[]
  defaultRegistry?: string
}

const RUNTIMES = ['containerd', 'docker', 'podman'] as const

/** `dfclient install --runtime containerd|docker|podman [--config-path DIR] [--mirror URL] [--dry-run]`. */
export function registerInstall (program: Command): void {
  program.command('install')
    .description('point a container runtime at the dfclient mirror: containerd hosts.toml, Docker daemon.json registry-mirrors (Docker Hub only), podman/CRI-O registries.conf.d; idempotent, backs up what it changes')
    .requiredOption('--runtime <RUNTIME>', 'containerd, docker or podman')
    .option('--config-path <DIR>', `where the runtime's config lives (default: containerd ${DEFAULT_CONFIG_PATHS.containerd}, docker ${DEFAULT_CONFIG_PATHS.docker}, podman ${DEFAULT_CONFIG_PATHS.podman})`)
    .option('--mirror <URL>', 'the dfclient mirror', 'http://127.0.0.1:65001')
    .option('--dry-run', 'print the diff, change nothing')
    .option('--uninstall', 'take the mirror out again (files the installer wrote are deleted, merged ones restored to what they were without it)')
    .option('--containerd-config <FILE>', 'containerd\'s config.toml, checked for registry config_path', '/etc/containerd/config.toml')
    .option('--config <FILE>', 'the daemon\'s YAML config, for its --registry entries and --default-registry (env DAMSELFLY_CONFIG)')
    .option('--registry <HOST=URL>', 'a registry to give its own hosts.toml, with URL as the fallback server (repeatable; env DAMSELFLY_REGISTRY)', repeatable)
    .option('--default-registry <HOST>', 'the dfclient\'s --default-registry: the registry podman\'s mirror entry is for (env DAMSELFLY_DEFAULT_REGISTRY; default docker.io)')
    .action(async (flags: InstallFlags) => { process.exit(await install(flags)) })
}

async function install (flags: InstallFlags): Promise<number> {
  try {
    if (!(RUNTIMES as readonly string[]).includes(flags.runtime ?? '')) throw new UsageError(`--runtime must be one of ${RUNTIMES.join(', ')}`)
    const runtime = flags.runtime as Runtime
    let mirror: URL
    try { mirror = new URL(flags.mirror) } catch { throw new UsageError(`--mirror is not a URL: ${flags.mirror}`) }
    if ((mirror.protocol !== 'http:' && mirror.protocol !== 'https:') || mirror.search !== '' || mirror.username !== '') throw new UsageError(`--mirror must be http(s)://HOST:PORT: ${flags.mirror}`)
    const config = await loadSharedConfig(sharedOptionalConfigSchema, flags as unknown as Record<string, unknown>)
    const result = await runInstall({
      runtime,
      configPath: resolve(flags.configPath ?? DEFAULT_CONFIG_PATHS[runtime]),
      mirror: mirror.href.replace(/\/+$/, ''),
      registries: new Map(config.registry.map(r => [r.host, r.url])),
      defaultRegistry: config.defaultRegistry,
      containerdConfig: resolve(flags.containerdConfig),
      dryRun: flags.dryRun === true,
      uninstall: flags.uninstall === true
    })
    if (flags.dryRun === true) {
      process.stdout.write(result.diff === '' ? 'no changes: the runtime already points at the mirror\n' : result.diff)
    } else {
      for (const p of result.written) process.stdout.write(`wrote ${p}\n`)
      for (const p of result.removed) process.stdout.write(`removed ${p}\n`)
      for (const p of result.backups) process.stdout.write(`backup ${p}\n`)
      if (result.written.length + result.removed.length === 0) process.stdout.write('no changes: already configured\n')
    }
    for (const n of result.notes) process.stdout.write(`note: ${n}\n`)
    for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`)
    return EXIT.ok
  } catch (err) {
    return reportError('install', err)
  }
}
