import { chmod, copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { createTwoFilesPatch } from 'diff'

/** One file the installer wants to be different: `after` undefined means delete it. */
export interface FileChange {
  path: string
  before: string | undefined
  after: string | undefined
}

/** The first line of every file the installer writes whole: how it recognises its own files. */
export const MANAGED_MARKER = '# Managed by `dfclient install` (Damselfly).'

/** Reads a file, or `undefined` when it does not exist. */
export async function readIfExists (path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined
    throw err
  }
}

/** Only the changes that change something (what makes a second run a no-op). */
export function effective (changes: readonly FileChange[]): FileChange[] {
  return changes.filter(c => c.before !== c.after)
}

/** A unified diff of the changes, `/dev/null` standing for a missing file. */
export function renderDiff (changes: readonly FileChange[]): string {
  return effective(changes).map(c => createTwoFilesPatch(
    c.before === undefined ? '/dev/null' : c.path,
    c.after === undefined ? '/dev/null' : c.path,
    c.before ?? '',
    c.after ?? ''
  )).join('')
}

/** `path.damselfly-backup-20260821T101500Z`: no runtime reads files with such names. */
export function backupPath (path: string, now: Date): string {
  return `${path}.damselfly-backup-${now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')}`
}

/**
 * Applies the effective changes: an existing file not written by the installer is first copied to a
 * backup next to it (returned),
 * new content goes to a temp file renamed into place (a runtime never reads a torn config), keeping
 * the old file's mode.
 */
export async function applyChanges (changes: readonly FileChange[], now = new Date()): Promise<{ written: string[], removed: string[], backups: string[] }> {
  const out = { written: [] as string[], removed: [] as string[], backups: [] as string[] }
  for (const c of effective(changes)) {
    const old = await stat(c.path).catch(() => undefined)
    // Files the installer wrote whole are regenerated at will: only other files are backed up.
    if (old !== undefined && c.before?.startsWith(MANAGED_MARKER) !== true) {
      const backup = backupPath(c.path, now)
      await copyFile(c.path, backup)
      out.backups.push(backup)
    }
    if (c.after === undefined) {
      await rm(c.path, { force: true })
      out.removed.push(c.path)
      continue
    }
    await mkdir(dirname(c.path), { recursive: true })
    const tmp = `${c.path}.${process.pid}.tmp`
    await writeFile(tmp, c.after, { mode: 0o644 })
    if (old !== undefined) await chmod(tmp, old.mode & 0o7777)
    await rename(tmp, c.path)
    out.written.push(c.path)
  }
  return out
}
