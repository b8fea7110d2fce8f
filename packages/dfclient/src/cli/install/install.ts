import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { DOCKER_HUB, registryBaseUrl } from '@damselfly/proto'
import { containerdConfigPath, planContainerd } from './containerd.js'
import { planDocker } from './docker.js'
import { applyChanges, effective, readIfExists, renderDiff, type FileChange } from './file-change.js'
import { planPodman } from './podman.js'

export type Runtime = 'containerd' | 'docker' | 'podman'

/** Where each runtime keeps the config we write, unless `--config-path` says otherwise. */
export const DEFAULT_CONFIG_PATHS: Record<Runtime, string> = {
  containerd: '/etc/containerd/certs.d',
  docker: '/etc/docker',
  podman: '/etc/containers'
}

export interface InstallInit {
  runtime: Runtime
  configPath: string
  mirror: string
  /** `--registry HOST=URL` entries: registries that get their own hosts.toml (containerd). */
  registries: ReadonlyMap<string, string>
  /** The dfclient's `--default-registry`: the one registry podman's mirror can serve. */
  defaultRegistry: string
  /** containerd's config.toml, checked for `config_path` (not changed). */
  containerdConfig: string
  dryRun: boolean
  uninstall: boolean
}

export interface InstallResult {
  changes: FileChange[]
  diff: string
  written: string[]
  removed: string[]
  backups: string[]
  /** Things the operator must know or do (restart, a config_path that points elsewhere …). */
  notes: string[]
  warnings: string[]
}

/** Plans the runtime's changes, then prints (dry run) or applies them. Idempotent. */
export async function runInstall (init: InstallInit): Promise<InstallResult> {
  const notes: string[] = []
  const warnings: string[] = []
  let changes: FileChange[]
  const uninstall = init.uninstall
  if (init.runtime === 'containerd') {
    const registries = new Map<string, string>([[DOCKER_HUB, registryBaseUrl(DOCKER_HUB, init.registries)], ...init.registries])
    if (!registries.has(init.defaultRegistry)) registries.set(init.defaultRegistry, registryBaseUrl(init.defaultRegistry, init.registries))
    changes = await planContainerd({ configPath: init.configPath, mirror: init.mirror, registries, existingHosts: await hostDirs(init.configPath), uninstall }, readIfExists)
    const toml = await readIfExists(init.containerdConfig)
    const configured = toml === undefined ? undefined : containerdConfigPath(toml)
    if (toml !== undefined && configured === undefined) {
      warnings.push(`${init.containerdConfig} sets no registry config_path: the CRI (kubelet) ignores hosts.toml files. Add\n  [plugins."io.containerd.grpc.v1.cri".registry]\n    config_path = "${init.configPath}"\n(containerd 2.x: [plugins."io.containerd.cri.v1.images".registry]) and restart containerd.`)
    } else if (configured !== undefined && configured.split(':').every(p => p.replace(/\/+$/, '') !== init.configPath.replace(/\/+$/, ''))) {
      warnings.push(`${init.containerdConfig} has config_path = "${configured}", not ${init.configPath}: containerd will not read these files.`)
    }
    notes.push('containerd reads hosts.toml on every pull: no restart needed (ctr needs --hosts-dir unless its default matches).')
  } else if (init.runtime === 'docker') {
    changes = await planDocker({ configPath: init.configPath, mirror: init.mirror, uninstall }, readIfExists)
    notes.push('Docker uses registry-mirrors for Docker Hub images only; other registries are pulled directly (use containerd\'s hosts.toml for those).')
    notes.push('Apply with `systemctl reload docker` (registry-mirrors is reloaded on SIGHUP).')
  } else {
    changes = await planPodman({ configPath: init.configPath, mirror: init.mirror, registry: init.defaultRegistry, registryUrl: init.registries.get(init.defaultRegistry), uninstall }, readIfExists)
    notes.push(`podman, skopeo and CRI-O send no ns=, so the mirror serves them for the dfclient's --default-registry (${init.defaultRegistry}) only.`)
    notes.push('podman and skopeo read the drop-in on their next run; CRI-O needs `systemctl reload crio`.')
  }
  const diff = renderDiff(changes)
  if (init.dryRun) return { changes, diff, written: [], removed: [], backups: [], notes, warnings }
  const applied = await applyChanges(changes)
  return { changes: effective(changes), diff, ...applied, notes, warnings }
}

/** Registry directories under a certs.d that hold a hosts.toml (other than `_default`). */
async function hostDirs (configPath: string): Promise<string[]> {
  let names: string[]
  try { names = await readdir(configPath) } catch { return [] }
  const out: string[] = []
  for (const name of names) {
    if (name === '_default') continue
    if (await readIfExists(join(configPath, name, 'hosts.toml')) !== undefined) out.push(name)
  }
  return out
}
