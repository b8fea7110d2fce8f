import { join } from 'node:path'
import { dfError } from '@damselfly/proto'
import type { FileChange } from './file-change.js'

/**
 * Docker's `daemon.json` with the mirror first in `registry-mirrors` (PROTOCOLS.md §3). Every other
 * key, and every other mirror, is kept: the file is merged, never replaced. Docker uses mirrors for
 * Docker Hub images only; images of other registries are pulled from them directly. With
 * `uninstall`, the mirror is taken out again (and the key with it when nothing else is left).
 */
export async function planDocker (init: { configPath: string, mirror: string, uninstall?: boolean }, read: (path: string) => Promise<string | undefined>): Promise<FileChange[]> {
  const path = join(init.configPath, 'daemon.json')
  const before = await read(path)
  let doc: Record<string, unknown> = {}
  if (before !== undefined && before.trim() !== '') {
    try {
      const parsed: unknown = JSON.parse(before)
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object')
      doc = parsed as Record<string, unknown>
    } catch (err) {
      throw dfError('DF_ERR_RUNTIME_CONFIG_INVALID', `${path} is not a JSON object, left untouched: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  const existing = doc['registry-mirrors']
  if (existing !== undefined && (!Array.isArray(existing) || existing.some(m => typeof m !== 'string'))) {
    throw dfError('DF_ERR_RUNTIME_CONFIG_INVALID', `${path}: "registry-mirrors" is not a list of URLs, left untouched`)
  }
  const mirrors = (existing ?? []) as string[]
  // Docker adds a trailing slash to every mirror; compare without it.
  const same = (m: string): boolean => m.replace(/\/+$/, '') === init.mirror.replace(/\/+$/, '')
  const others = mirrors.filter(m => !same(m))
  const wanted = init.uninstall === true ? others : [init.mirror, ...others]
  if (wanted.length === mirrors.length && wanted.every((m, i) => m === mirrors[i])) return [{ path, before, after: before }]
  const next: Record<string, unknown> = { ...doc }
  if (wanted.length === 0) delete next['registry-mirrors']
  else next['registry-mirrors'] = wanted
  return [{ path, before, after: `${JSON.stringify(next, null, 2)}\n` }]
}
