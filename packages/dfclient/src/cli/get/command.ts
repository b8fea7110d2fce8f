import { mkdtemp, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import type { Command } from 'commander'
import { formatBytes } from '@damselfly/proto'
import type { EncrypterName } from '../../p2p/node.js'
import { EXIT, cliLogger, loadSharedConfig, repeatable, reportError, sharedConfigSchema, UsageError } from '../common.js'
import { RegistryClient } from '../oci/registry-client.js'
import { runGet } from './get.js'
import { createProgress } from './progress.js'
import { startStandalonePeer } from './standalone-peer.js'

interface GetFlags {
  output?: string
  config?: string
  supernode?: string[]
  token?: string
  registry?: string[]
  p2pEncrypters?: string[]
  p2pListen?: string[]
  p2pAnnounce?: string[]
  platform?: string
  user?: string
  logLevel: string
  progress: boolean
}

/** `dfclient get SOURCE -O FILE` (CONTRACTS.md). */
export function registerGet (program: Command): void {
  program.command('get')
    .description('download a blob (http(s)://host/v2/<name>/blobs/<digest>) or every blob of an image (host/name:tag) through the P2P network, verified; exit 0 only when every digest matched')
    .argument('<SOURCE>', 'blob URL or image reference')
    .requiredOption('-O, --output <FILE>', 'where to write: the blob file, or for an image a directory (OCI image layout)')
    .option('--config <FILE>', 'the daemon\'s YAML config, for its supernode, token and registries (env DAMSELFLY_CONFIG)')
    .option('--supernode <URL>', 'supernode base URL (repeatable; env DAMSELFLY_SUPERNODE)', repeatable)
    .option('--token <SECRET>', 'cluster secret sent to the supernode (env DAMSELFLY_TOKEN)')
    .option('--registry <HOST=URL>', 'how to reach a registry host (repeatable; env DAMSELFLY_REGISTRY)', repeatable)
    .option('--p2p-encrypters <LIST>', 'libp2p encrypters in preference order: tls, noise (env DAMSELFLY_P2P_ENCRYPTERS)', repeatable)
    .option('--p2p-listen <MULTIADDR>', 'libp2p listen address of this short-lived peer (repeatable; default /ip4/0.0.0.0/tcp/0)', repeatable)
    .option('--p2p-announce <MULTIADDR>', 'address other peers should dial (repeatable)', repeatable)
    .option('--platform <OS/ARCH>', 'platform to pick from a multi-platform image (default: this machine\'s)')
    .option('--user <USER:PASS>', 'registry credentials (basic auth, or for a token registry\'s realm)')
    .option('--log-level <LEVEL>', 'pino log level for the JSON logs on stderr', 'warn')
    .option('--no-progress', 'no progress bar even on a terminal')
    .action(async (source: string, flags: GetFlags) => { process.exit(await get(source, flags)) })
}

async function get (source: string, flags: GetFlags): Promise<number> {
  const abort = new AbortController()
  const onSignal = (): void => { abort.abort(new Error('interrupted')) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const progress = createProgress(process.stderr, flags.progress)
  let stopPeer: (() => Promise<void>) | undefined
  try {
    const config = await loadSharedConfig(sharedConfigSchema, flags as unknown as Record<string, unknown>)
    const out = resolve(flags.output as string)
    const userColon = flags.user?.indexOf(':') ?? -1
    if (flags.user !== undefined && userColon <= 0) throw new UsageError('--user must be USER:PASS')
    const isDir = (await stat(out).catch(() => undefined))?.isDirectory() === true
    // The peer's cache sits next to the output: same filesystem, and never the daemon's data dir.
    const workDir = await mkdtemp(join(isDir ? out : dirname(out), '.dfclient-get-'))
    const logger = cliLogger(flags.logLevel)
    const peer = await startStandalonePeer({
      supernode: config.supernode,
      token: config.token,
      p2pListen: flags.p2pListen ?? ['/ip4/0.0.0.0/tcp/0'],
      p2pAnnounce: flags.p2pAnnounce ?? [],
      encrypters: config.p2pEncrypters as EncrypterName[],
      workDir,
      logger
    })
    stopPeer = peer.stop
    const registry = new RegistryClient({ ...(flags.user === undefined ? {} : { credentials: { username: flags.user.slice(0, userColon), password: flags.user.slice(userColon + 1) } }) })
    const registries = new Map(config.registry.map(r => [r.host, r.url]))
    const lines: string[] = []
    const result = await runGet(source, out, { platform: flags.platform }, { openDownload: peer.openDownload, registry, registries, progress, report: line => { lines.push(line) } }, abort.signal)
    progress.stop()
    for (const line of lines) process.stdout.write(`${line}\n`)
    const received = await peer.metrics.pieceBytesReceived.get()
    const from = (label: string): number => received.values.filter(v => v.labels.from === label).reduce((n, v) => n + v.value, 0)
    const total = result.blobs.reduce((n, b) => n + b.size, 0)
    const upstream = result.blobs.reduce((n, b) => n + b.upstreamBytes, 0)
    process.stdout.write(`${result.blobs.length} blob(s), ${formatBytes(total)}, every digest verified; from peers ${formatBytes(from('peer'))}, from the supernode seed ${formatBytes(from('supernode'))}, from the upstream after a P2P failure ${formatBytes(upstream)}\n`)
    return EXIT.ok
  } catch (err) {
    progress.stop()
    return reportError('get', err)
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await stopPeer?.().catch(() => undefined)
  }
}
