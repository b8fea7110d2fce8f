import { join } from 'node:path'
import { parse, stringify, type TomlTable } from 'smol-toml'
import { dfError } from '@damselfly/proto'
import { MANAGED_MARKER, type FileChange } from './file-change.js'

export interface ContainerdPlanInit {
  /** The `certs.d`-style directory containerd's `config_path` names. */
  configPath: string
  /** The dfclient mirror, e.g. `http://127.0.0.1:65001`. */
  mirror: string
  /** Registry host → its own URL (the fallback `server`), for the per-registry files written new. */
  registries: ReadonlyMap<string, string>
  /** Host directories that already hold a hosts.toml (they shadow `_default` for their registry). */
  existingHosts: readonly string[]
  uninstall?: boolean
}

/** The capabilities our mirror gets: pull and resolve (tags), never push (PROTOCOLS.md §2.1). */
const CAPABILITIES = ['pull', 'resolve']

/**
 * containerd's `hosts.toml` files that route pulls through the mirror (PROTOCOLS.md §2):
 * - `_default/hosts.toml`: the catch-all for every registry without its own directory. The mirror is
 *   the only `[host]`; with no `server`, containerd falls back to the registry itself when the mirror
 *   fails. containerd adds `?ns=<registry>` to every request, which is how the mirror knows the upstream.
 * - `<registry>/hosts.toml` for each configured registry (and docker.io): the mirror first, then the
 *   registry's own URL as `server` (an `http://` registry needs that to be reachable at all).
 * - Every existing `<registry>/hosts.toml` we did not write shadows `_default` for its registry, so the
 *   mirror is added to it as the first `[host]`, keeping everything else (comments go: the file is
 *   re-serialised, and the original is kept as a backup).
 * With `uninstall`, files we wrote go and the mirror is taken out of files we changed.
 */
export async function planContainerd (init: ContainerdPlanInit, read: (path: string) => Promise<string | undefined>): Promise<FileChange[]> {
  const hosts = new Set<string>(['_default', ...init.registries.keys(), ...init.existingHosts])
  const changes: FileChange[] = []
  for (const host of [...hosts].sort()) {
    const path = join(init.configPath, host, 'hosts.toml')
    const before = await read(path)
    const server = host === '_default' ? undefined : init.registries.get(host)
    changes.push({ path, before, after: init.uninstall === true ? withoutMirror(path, before, init.mirror) : withMirror(path, before, init.mirror, server) })
  }
  return changes
}

/** The text of a hosts.toml we own. */
export function managedHostsToml (mirror: string, server: string | undefined): string {
  return [
    MANAGED_MARKER,
    '# containerd tries the dfclient mirror first, then the registry itself. Remove with',
    '# `dfclient install --runtime containerd --uninstall`.',
    ...(server === undefined ? [] : [`server = ${JSON.stringify(server)}`]),
    '',
    `[host.${JSON.stringify(mirror)}]`,
    `  capabilities = ${JSON.stringify(CAPABILITIES).replace(/,/g, ', ')}`,
    ''
  ].join('\n')
}

function withMirror (path: string, before: string | undefined, mirror: string, server: string | undefined): string | undefined {
  if (before === undefined || before.startsWith(MANAGED_MARKER)) return managedHostsToml(mirror, server)
  const doc = parseHosts(path, before)
  const hostTables = (doc.host ?? {}) as TomlTable
  const first = Object.keys(hostTables)[0]
  const caps = (hostTables[mirror] as { capabilities?: unknown } | undefined)?.capabilities
  if (first === mirror && Array.isArray(caps) && CAPABILITIES.every(c => caps.includes(c))) return before
  const rest = Object.fromEntries(Object.entries(hostTables).filter(([k]) => k !== mirror))
  const merged: TomlTable = { ...doc, host: { [mirror]: { ...(hostTables[mirror] as TomlTable | undefined), capabilities: CAPABILITIES }, ...rest } }
  return `# Changed by \`dfclient install\` (Damselfly): the mirror was added as the first [host]; the\n# original (with its comments) is in a .damselfly-backup-* file next to this one.\n${stringify(merged)}\n`
}

function withoutMirror (path: string, before: string | undefined, mirror: string): string | undefined {
  if (before === undefined || before.startsWith(MANAGED_MARKER)) return undefined
  const doc = parseHosts(path, before)
  const hostTables = (doc.host ?? {}) as TomlTable
  if (!(mirror in hostTables)) return before
  const rest = Object.fromEntries(Object.entries(hostTables).filter(([k]) => k !== mirror))
  const { host: _host, ...top } = doc
  // containerd 1.6 ignores a file without any [host] table (test/harness/containerd.ts): keep the
  // server as its own host, which means the same.
  const server = typeof doc.server === 'string' ? doc.server : undefined
  const hostsLeft = Object.keys(rest).length > 0 ? rest : server === undefined ? undefined : { [server]: { capabilities: CAPABILITIES } }
  return `${stringify(hostsLeft === undefined ? top : { ...top, host: hostsLeft })}\n`
}

function parseHosts (path: string, text: string): TomlTable {
  try {
    return parse(text)
  } catch (err) {
    throw dfError('DF_ERR_RUNTIME_CONFIG_INVALID', `${path} is not valid TOML, left untouched: ${err instanceof Error ? err.message.split('\n')[0] as string : String(err)}`)
  }
}

/**
 * What containerd's own config says about `config_path` (CRI in containerd 1.x: `plugins."io.containerd
 * .grpc.v1.cri".registry`, 2.x: `plugins."io.containerd.cri.v1.images".registry`): the directory, or
 * `undefined` when unset (then the CRI ignores hosts.toml files and pulls from registries directly).
 */
export function containerdConfigPath (configToml: string): string | undefined {
  let doc: TomlTable
  try { doc = parse(configToml) } catch { return undefined }
  const plugins = (doc.plugins ?? {}) as Record<string, { registry?: { config_path?: unknown } } | undefined>
  for (const name of ['io.containerd.grpc.v1.cri', 'io.containerd.cri.v1.images']) {
    const p = plugins[name]?.registry?.config_path
    if (typeof p === 'string' && p !== '') return p
  }
  return undefined
}
