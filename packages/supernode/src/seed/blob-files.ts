import { createReadStream } from 'node:fs'
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { Digest } from '@damselfly/proto'

/** Read size when serving a piece: 1 MiB reads (4 per 4 MiB piece) instead of 256 KiB ones. */
const READ_CHUNK = 1024 * 1024

/**
 * The seed's blobs on disk: `<dataDir>/blobs/<algorithm>/<hex>` once verified, `<hex>.partial`
 * while the back-to-source fetch writes it. One file per blob; pieces are byte ranges of it, so a
 * piece can be served as soon as its bytes are written and hashed, before the blob completes.
 */
export class BlobFiles {
  readonly #root: string

  constructor (dataDir: string) {
    this.#root = join(dataDir, 'blobs')
  }

  finalPath (digest: Digest): string {
    return join(this.#root, digest.algorithm, digest.hex)
  }

  partialPath (digest: Digest): string {
    return `${this.finalPath(digest)}.partial`
  }

  /** Creates (truncating) the partial file for writing. */
  async create (digest: Digest): Promise<FileHandle> {
    await mkdir(join(this.#root, digest.algorithm), { recursive: true })
    return await open(this.partialPath(digest), 'w')
  }

  /** fsyncs and closes the partial file, then renames it to its final name. */
  async commit (digest: Digest, handle: FileHandle): Promise<void> {
    await handle.sync()
    await handle.close()
    await rename(this.partialPath(digest), this.finalPath(digest))
  }

  /** Deletes both the partial and the final file, if present. */
  async remove (digest: Digest): Promise<void> {
    await rm(this.partialPath(digest), { force: true })
    await rm(this.finalPath(digest), { force: true })
  }

  /** True when the verified blob exists with the expected size. */
  async hasComplete (digest: Digest, size: number): Promise<boolean> {
    try {
      return (await stat(this.finalPath(digest))).size === size
    } catch {
      // Missing or unreadable: either way the blob is not usable.
      return false
    }
  }

  /**
   * Opens `[start, end)` of a blob for reading, from the final file or, while it is still being
   * fetched, the partial one. The caller must only ask for ranges already written.
   */
  async openRange (digest: Digest, start: number, end: number): Promise<AsyncIterable<Uint8Array>> {
    // Try final, then partial, then final again: the rename may happen between the two checks.
    for (const path of [this.finalPath(digest), this.partialPath(digest), this.finalPath(digest)]) {
      let handle: FileHandle
      try {
        handle = await open(path, 'r')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue
        throw err
      }
      if (end <= start) {
        await handle.close()
        return (async function * () {})()
      }
      return createReadStream('', { fd: handle, start, end: end - 1, highWaterMark: READ_CHUNK, autoClose: true })
    }
    throw new Error(`blob ${digest.value} is not on disk`)
  }
}
