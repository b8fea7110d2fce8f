import { access, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runChecked, runCommand, startProcess, type ManagedProcess, type RunResult } from './processes.js'
import type { BasicAuth } from './registry.js'

export interface StartContainerdOptions {
  /** Private directory (root, state, socket, config, log); keep it short, a unix socket path has ≤107 bytes. */
  dir: string
  /** Namespace used when a call gives none; default `damselfly-test`. */
  namespace?: string
  startTimeoutMs?: number
  /** Run the daemon and every `ctr` call inside this network namespace (`ctr` does the registry fetches). */
  netns?: string
}

export interface CtrPullOptions {
  /** A `certs.d`-style directory (see {@link writeHostsToml}). */
  hostsDir?: string
  user?: BasicAuth
  /** Add `--plain-http` (only needed when no hosts.toml gives an `http://` server). */
  plainHttp?: boolean
  platform?: string
  allPlatforms?: boolean
  namespace?: string
  /** default 120 s */
  timeoutMs?: number
  extraArgs?: string[]
}

/** A root containerd 1.6 daemon with its own root, state and socket, driven with `ctr`. */
export interface Containerd {
  socket: string
  dir: string
  process: ManagedProcess
  namespace: string
  /** Runs `ctr -a SOCK -n NS ARGS…`; does not throw. */
  ctr: (args: string[], opts?: { namespace?: string, timeoutMs?: number }) => Promise<RunResult>
  /** `ctr images pull [--hosts-dir DIR] [--user u:p] REF`; does not throw (check `code`). */
  pull: (ref: string, opts?: CtrPullOptions) => Promise<RunResult>
  /** Digests in the content store (shared by all namespaces). */
  contentDigests: (namespace?: string) => Promise<string[]>
  /** Image names in a namespace. */
  images: (namespace?: string) => Promise<string[]>
  /** Cold state: removes images and leases in every namespace, then any remaining content (GC runs synchronously). */
  reset: () => Promise<void>
  /** `reset()` then SIGTERM by PID (SIGKILL after 5 s). */
  stop: () => Promise<number | null>
}

/**
 * Starts `containerd --config CONFIG` (config version 2, root/state/socket under `dir`, CRI and unused
 * snapshotters disabled: starts in ~0.3 s) and waits for the gRPC socket to answer `ctr version`.
 */
export async function startContainerd (opts: StartContainerdOptions): Promise<Containerd> {
  const { dir } = opts
  const socket = join(dir, 'containerd.sock')
  const namespace = opts.namespace ?? 'damselfly-test'
  const config = [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    'disabled_plugins = [',
    '  "io.containerd.grpc.v1.cri",',
    '  "io.containerd.snapshotter.v1.btrfs",',
    '  "io.containerd.snapshotter.v1.zfs",',
    '  "io.containerd.snapshotter.v1.devmapper",',
    '  "io.containerd.snapshotter.v1.aufs",',
    '  "io.containerd.tracing.processor.v1.otlp",',
    '  "io.containerd.internal.v1.tracing",',
    ']',
    '[grpc]',
    `  address = "${socket}"`,
    '[ttrpc]',
    `  address = "${socket}.ttrpc"`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${join(dir, 'opt')}"`,
    ''
  ].join('\n')
  const configPath = join(dir, 'config.toml')
  await writeFile(configPath, config)
  const proc = startProcess({ name: 'containerd', command: 'containerd', args: ['--config', configPath], logDir: dir, netns: opts.netns })

  const ctr = async (args: string[], o: { namespace?: string, timeoutMs?: number } = {}): Promise<RunResult> =>
    await runCommand('ctr', ['-a', socket, '-n', o.namespace ?? namespace, ...args], { timeoutMs: o.timeoutMs ?? 60_000, netns: opts.netns })
  const lines = (r: RunResult): string[] => r.stdout.split('\n').map((l) => l.trim()).filter((l) => l !== '')
  const checked = async (args: string[], ns?: string): Promise<string[]> => {
    const r = await ctr(args, { namespace: ns })
    if (r.code !== 0) throw new Error(`ctr ${args.join(' ')} failed: ${r.stderr}`)
    return lines(r)
  }

  try {
    const deadline = Date.now() + (opts.startTimeoutMs ?? 15_000)
    for (;;) {
      if (proc.status !== undefined) throw new Error(`containerd exited early (${proc.status.code})\n${proc.output()}`)
      const ready = await access(socket).then(async () => (await ctr(['version'], { timeoutMs: 5000 })).code === 0, () => false)
      if (ready) break
      if (Date.now() > deadline) throw new Error(`containerd socket ${socket} not ready\n${proc.output()}`)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  } catch (err) {
    await proc.stop()
    throw err
  }

  const reset = async (): Promise<void> => {
    for (const ns of await checked(['namespaces', 'ls', '-q'])) {
      const imgs = await checked(['images', 'ls', '-q'], ns)
      if (imgs.length > 0) await checked(['images', 'rm', '--sync', ...imgs], ns)
      const leases = await checked(['leases', 'ls', '-q'], ns)
      if (leases.length > 0) await checked(['leases', 'rm', '--sync', ...leases], ns)
      const left = await checked(['content', 'ls', '-q'], ns)
      if (left.length > 0) await checked(['content', 'rm', ...left], ns)
    }
  }

  return {
    socket,
    dir,
    process: proc,
    namespace,
    ctr,
    pull: async (ref, o = {}) => {
      const args = ['images', 'pull']
      if (o.plainHttp === true) args.push('--plain-http')
      if (o.hostsDir !== undefined) args.push('--hosts-dir', o.hostsDir)
      if (o.user !== undefined) args.push('--user', `${o.user.username}:${o.user.password}`)
      if (o.platform !== undefined) args.push('--platform', o.platform)
      if (o.allPlatforms === true) args.push('--all-platforms')
      args.push(...(o.extraArgs ?? []), ref)
      return await ctr(args, { namespace: o.namespace, timeoutMs: o.timeoutMs ?? 120_000 })
    },
    contentDigests: async (ns) => (await checked(['content', 'ls', '-q'], ns)).filter((d) => d.startsWith('sha256:')),
    images: async (ns) => await checked(['images', 'ls', '-q'], ns),
    reset,
    stop: async () => {
      if (proc.status === undefined) {
        try { await reset() } catch { /* best effort: the daemon's root dir is deleted with its temp dir */ }
      }
      return await proc.stop()
    }
  }
}

export interface HostsTomlOptions {
  /** Upstream, tried last, e.g. `http://127.0.0.1:5000`. */
  server?: string
  /** Mirror URLs tried first in this order, e.g. `http://127.0.0.1:65001`, each with pull+resolve. */
  mirrors?: string[]
}

/** The text of a `hosts.toml` (see {@link writeHostsToml}). */
export function hostsTomlText (opts: HostsTomlOptions): string {
  const lines: string[] = []
  if (opts.server !== undefined) lines.push(`server = "${opts.server}"`, '')
  const mirrors = opts.mirrors ?? []
  // ctr 1.6.20 rejects a file without any `[host."…"]` table ("failed to decode hosts.toml: invalid
  // `host` tree") and then ignores it: the registry is reached over https, and only loopback hosts get
  // containerd's plain-http fallback. A server-only file therefore also lists the server as its own
  // (only) host, which means the same thing and decodes.
  const hosts = mirrors.length > 0 ? mirrors : opts.server !== undefined ? [opts.server] : []
  for (const h of hosts) lines.push(`[host."${h}"]`, '  capabilities = ["pull", "resolve"]', '')
  return lines.join('\n')
}

/**
 * Writes `<hostsDir>/<registryHost>/hosts.toml` (containerd `certs.d` layout, the directory named
 * `host:port`) and returns `hostsDir` for `--hosts-dir`. Mirrors come first (pull+resolve), the server
 * last; with no mirrors the server is also written as a `[host]` entry, so that ctr 1.6 accepts the file
 * instead of ignoring it and trying https.
 */
export async function writeHostsToml (hostsDir: string, registryHost: string, opts: HostsTomlOptions): Promise<string> {
  const dir = join(hostsDir, registryHost)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'hosts.toml'), hostsTomlText(opts))
  return hostsDir
}

/** Throws unless `ctr` is installed (for a clearer failure than ENOENT). */
export async function assertCtrInstalled (): Promise<void> {
  await runChecked('ctr', ['--version'])
}
