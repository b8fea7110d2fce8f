import { join } from 'node:path'
import { DOCKER_HUB } from '@damselfly/proto'
import { MANAGED_MARKER, type FileChange } from './file-change.js'

/** The drop-in we own; `50-` sorts it after distribution defaults (`00-`…) so its entries win. */
export const PODMAN_DROPIN = join('registries.conf.d', '50-damselfly.conf')

/**
 * A `registries.conf.d` drop-in (containers-registries.conf.d(5)) giving `registry` the mirror as its
 * `[[registry.mirror]]`. A drop-in rather than an edit of `registries.conf`: it is ours alone, a
 * `[[registry]]` with the same prefix in it overrides the main file's, and uninstalling is deleting
 * it. Podman, CRI-O, skopeo and buildah read it. They send no `ns=`, so the mirror serves them only
 * for the dfclient's `--default-registry`, which is why exactly that registry is mirrored here.
 */
export async function planPodman (init: { configPath: string, mirror: string, registry: string, registryUrl?: string | undefined, uninstall?: boolean }, read: (path: string) => Promise<string | undefined>): Promise<FileChange[]> {
  const path = join(init.configPath, PODMAN_DROPIN)
  const before = await read(path)
  if (init.uninstall === true) return [{ path, before, after: before === undefined || before.startsWith(MANAGED_MARKER) ? undefined : before }]
  return [{ path, before, after: podmanDropin(init.mirror, init.registry, init.registryUrl) }]
}

export function podmanDropin (mirror: string, registry: string, registryUrl: string | undefined): string {
  const m = new URL(mirror)
  const lines = [
    MANAGED_MARKER,
    `# Pulls of ${registry} images go through the dfclient mirror first, then to the registry itself.`,
    '# Remove with `dfclient install --runtime podman --uninstall`.',
    '',
    '[[registry]]',
    `prefix = ${JSON.stringify(registry)}`,
    // containers/image resolves docker.io to registry-1.docker.io itself.
    `location = ${JSON.stringify(registry === DOCKER_HUB ? DOCKER_HUB : registry)}`
  ]
  if (registryUrl?.startsWith('http:') === true) lines.push('insecure = true')
  lines.push('', '[[registry.mirror]]', `location = ${JSON.stringify(`${m.host}${m.pathname.replace(/\/+$/, '')}`)}`)
  if (m.protocol === 'http:') lines.push('insecure = true')
  lines.push('')
  return lines.join('\n')
}
