import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runCommand, startProcess, type ManagedProcess, type RunOptions, type RunResult } from './processes.js'

/**
 * The repository root: `$DAMSELFLY_REPO_ROOT`, else the nearest ancestor of this file whose
 * package.json declares `workspaces` (works from `test/harness/*.ts` and from `test/dist/harness/*.js`).
 */
export function repoRoot (): string {
  if (process.env.DAMSELFLY_REPO_ROOT !== undefined) return process.env.DAMSELFLY_REPO_ROOT
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { workspaces?: unknown }).workspaces !== undefined) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error('repository root not found (no package.json with "workspaces" above test/harness)')
    dir = up
  }
}

/** The fields of the `"msg":"ready"` log line both binaries print once they serve. */
export interface ReadyInfo {
  httpUrl: string
  peerId: string
  p2pAddrs: string[]
}

/** A running supernode or dfclient daemon. */
export interface DamselflyProcess extends ReadyInfo {
  process: ManagedProcess
  dataDir: string
  stop: () => Promise<number | null>
}

/** How a binary reaches a registry host: `--registry HOST=URL`. */
export interface RegistryMapping {
  host: string
  url: string
}

interface CommonOptions {
  /** Private directory: `data/` is the data dir and the log file goes here too. */
  dir: string
  registries?: RegistryMapping[]
  token?: string
  logLevel?: string
  extraArgs?: string[]
  env?: Record<string, string>
  /** default 30 s */
  readyTimeoutMs?: number
  /** Run inside this network namespace (`ip netns exec NETNS node …`). */
  netns?: string
  /** Host of the HTTP `--listen HOST:0`; default 127.0.0.1 (the dfclient mirror usually stays there). */
  listenHost?: string
  /** Host of `--p2p-listen /ip4/HOST/tcp/0`; default 127.0.0.1. */
  p2pHost?: string
}

export type SupernodeOptions = CommonOptions

export interface DfclientOptions extends CommonOptions {
  /** Supernode base URL(s) (`--supernode`, repeatable). */
  supernode: string | string[]
  /** `--default-registry`; default: the first registry's host. */
  defaultRegistry?: string
  name?: string
}

/**
 * Extra node options for our binaries from `$DAMSELFLY_NODE_ARGS` (space-separated), e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` — node refuses those in NODE_OPTIONS.
 */
function nodeArgs (): string[] {
  return (process.env.DAMSELFLY_NODE_ARGS ?? '').split(' ').filter(a => a !== '')
}

function registryArgs (regs: RegistryMapping[] = []): string[] {
  return regs.flatMap((r) => ['--registry', `${r.host}=${r.url}`])
}

/** Parses a pino JSON line; returns the ready info if it is the `"msg":"ready"` line. */
export function parseReadyLine (line: string): ReadyInfo | undefined {
  if (!line.startsWith('{')) return undefined
  let rec: { msg?: unknown, httpUrl?: unknown, peerId?: unknown, p2pAddrs?: unknown }
  try { rec = JSON.parse(line) } catch { return undefined }
  if (rec.msg !== 'ready' || typeof rec.httpUrl !== 'string') return undefined
  return {
    httpUrl: rec.httpUrl,
    peerId: typeof rec.peerId === 'string' ? rec.peerId : '',
    p2pAddrs: Array.isArray(rec.p2pAddrs) ? rec.p2pAddrs.map(String) : []
  }
}

async function startBinary (name: string, script: string, args: string[], opts: CommonOptions): Promise<DamselflyProcess> {
  const dataDir = join(opts.dir, 'data')
  const entry = join(repoRoot(), script)
  if (!existsSync(entry)) throw new Error(`${entry} does not exist: run \`npm run build\` at the repository root first`)
  const proc = startProcess({ name, command: process.execPath, args: [...nodeArgs(), entry, ...args], logDir: opts.dir, env: opts.env, netns: opts.netns })
  try {
    const line = await proc.waitForLine((l, s) => s === 'stdout' && parseReadyLine(l) !== undefined, opts.readyTimeoutMs ?? 30_000)
    const ready = parseReadyLine(line)!
    return { ...ready, process: proc, dataDir, stop: async () => await proc.stop() }
  } catch (err) {
    await proc.stop()
    throw err
  }
}

/**
 * Starts `node packages/supernode/dist/main.js --listen 127.0.0.1:0 --p2p-listen /ip4/127.0.0.1/tcp/0
 * --data-dir DIR/data --registry HOST=URL… [extra]` and resolves once it logs `"msg":"ready"`.
 */
export async function startSupernode (opts: SupernodeOptions): Promise<DamselflyProcess> {
  const args = [
    '--listen', `${opts.listenHost ?? '127.0.0.1'}:0`,
    '--p2p-listen', `/ip4/${opts.p2pHost ?? '127.0.0.1'}/tcp/0`,
    '--data-dir', join(opts.dir, 'data'),
    ...registryArgs(opts.registries),
    ...(opts.token !== undefined ? ['--token', opts.token] : []),
    ...(opts.logLevel !== undefined ? ['--log-level', opts.logLevel] : []),
    ...(opts.extraArgs ?? [])
  ]
  return await startBinary('supernode', 'packages/supernode/dist/main.js', args, opts)
}

/**
 * Starts `node packages/dfclient/dist/main.js daemon --supernode URL --listen 127.0.0.1:0
 * --p2p-listen /ip4/127.0.0.1/tcp/0 --data-dir DIR/data --registry HOST=URL… --default-registry HOST
 * [extra]` and resolves once it logs `"msg":"ready"` (its `httpUrl` is the mirror).
 */
export async function startDfclient (opts: DfclientOptions): Promise<DamselflyProcess> {
  const supernodes = Array.isArray(opts.supernode) ? opts.supernode : [opts.supernode]
  const defaultRegistry = opts.defaultRegistry ?? opts.registries?.[0]?.host
  const args = [
    'daemon',
    ...supernodes.flatMap((s) => ['--supernode', s]),
    '--listen', `${opts.listenHost ?? '127.0.0.1'}:0`,
    '--p2p-listen', `/ip4/${opts.p2pHost ?? '127.0.0.1'}/tcp/0`,
    '--data-dir', join(opts.dir, 'data'),
    ...registryArgs(opts.registries),
    ...(defaultRegistry !== undefined ? ['--default-registry', defaultRegistry] : []),
    ...(opts.token !== undefined ? ['--token', opts.token] : []),
    ...(opts.logLevel !== undefined ? ['--log-level', opts.logLevel] : []),
    ...(opts.extraArgs ?? [])
  ]
  return await startBinary(opts.name ?? 'dfclient', 'packages/dfclient/dist/main.js', args, opts)
}

/** `host:port` of an `http://host:port` URL (what registries.conf and hosts.toml name a mirror by). */
export function hostOf (url: string): string {
  return new URL(url).host
}

/**
 * Runs a one-shot `dfclient` command (`get`, `install`, `doctor` …) as operators do:
 * `node packages/dfclient/dist/main.js ARGS…`. Never throws; check `code`.
 */
export async function runDfclient (args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const entry = join(repoRoot(), 'packages/dfclient/dist/main.js')
  if (!existsSync(entry)) throw new Error(`${entry} does not exist: run \`npm run build\` at the repository root first`)
  return await runCommand(process.execPath, [...nodeArgs(), entry, ...args], { timeoutMs: 120_000, ...opts })
}
