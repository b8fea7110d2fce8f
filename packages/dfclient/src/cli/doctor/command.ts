import type { Command } from 'commander'
import { EXIT, loadSharedConfig, repeatable, reportError, sharedOptionalConfigSchema, UsageError } from '../common.js'
import { DEFAULT_CONFIG_PATHS, type Runtime } from '../install/install.js'
import { runDoctor } from './doctor.js'

interface DoctorFlags {
  mirror: string
  image?: string
  runtime?: string
  configPath?: string
  containerdConfig: string
  platform?: string
  user?: string
  json?: boolean
  config?: string
  supernode?: string[]
}

/** `dfclient doctor [--mirror URL] [--image REF]`. */
export function registerDoctor (program: Command): void {
  program.command('doctor')
    .description('check this node: the daemon, the supernode, the runtime config, then pull a canary image through the mirror and report where its bytes came from; exit 1 when P2P is not working')
    .option('--mirror <URL>', 'the dfclient mirror', 'http://127.0.0.1:65001')
    .option('--image <REF>', 'canary image pulled through the mirror (e.g. docker.io/library/busybox:latest); without it no pull is made')
    .option('--runtime <RUNTIME>', 'check only this runtime\'s config: containerd, docker or podman (default: every one found)')
    .option('--config-path <DIR>', `that runtime's config directory (default: containerd ${DEFAULT_CONFIG_PATHS.containerd}, docker ${DEFAULT_CONFIG_PATHS.docker}, podman ${DEFAULT_CONFIG_PATHS.podman})`)
    .option('--containerd-config <FILE>', 'containerd\'s config.toml, checked for registry config_path', '/etc/containerd/config.toml')
    .option('--platform <OS/ARCH>', 'platform of a multi-platform canary (default: this machine\'s)')
    .option('--user <USER:PASS>', 'registry credentials for the canary')
    .option('--json', 'print the report as JSON')
    .option('--config <FILE>', 'the daemon\'s YAML config, for its supernode URLs (env DAMSELFLY_CONFIG)')
    .option('--supernode <URL>', 'supernode to check (repeatable; env DAMSELFLY_SUPERNODE; default: the one the daemon uses)', repeatable)
    .action(async (flags: DoctorFlags) => { process.exit(await doctor(flags)) })
}

async function doctor (flags: DoctorFlags): Promise<number> {
  try {
    if (flags.runtime !== undefined && !['containerd', 'docker', 'podman'].includes(flags.runtime)) throw new UsageError('--runtime must be one of containerd, docker, podman')
    const colon = flags.user?.indexOf(':') ?? -1
    if (flags.user !== undefined && colon <= 0) throw new UsageError('--user must be USER:PASS')
    const config = await loadSharedConfig(sharedOptionalConfigSchema, flags as unknown as Record<string, unknown>)
    const report = await runDoctor({
      mirror: flags.mirror.replace(/\/+$/, ''),
      supernode: config.supernode,
      runtime: flags.runtime as Runtime | undefined,
      configPath: flags.configPath,
      containerdConfig: flags.containerdConfig,
      image: flags.image,
      platform: flags.platform,
      credentials: flags.user === undefined ? undefined : { username: flags.user.slice(0, colon), password: flags.user.slice(colon + 1) }
    })
    if (flags.json === true) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
    } else {
      for (const c of report.checks) process.stdout.write(`${`[${c.status}]`.padEnd(7)} ${c.name.padEnd(10)} ${c.detail}\n`)
      process.stdout.write(report.ok ? 'P2P is working on this node.\n' : 'P2P is NOT working on this node: see the [fail] lines above.\n')
    }
    return report.ok ? EXIT.ok : EXIT.failed
  } catch (err) {
    return reportError('doctor', err)
  }
}
