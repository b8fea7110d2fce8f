import { open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { BASE_PIECE_SIZE, layoutFor, parseDigest, type PieceLayout } from '@damselfly/proto'

/** The JSON sidecar `blobs/<alg>/<hex>.json` next to a blob's data file: which pieces are held. */
export interface Sidecar {
  digest: string
  size: number
  /** The piece size the blob was cut with; absent in sidecars written before it was recorded (4 MiB then). */
  pieceSize?: number
  pieces: Record<string, string>
}

/** One blob as found on disk at start. */
export interface LoadedBlob {
  digest: string
  layout: PieceLayout
  pieces: Map<number, string>
  /** The sidecar's mtime: when the blob was last committed to, or last used (see `markUsed`). */
  lastUsed: number
}

/**
 * Reads every sidecar under `root` (`<alg>/<hex>.json`). Stray files, torn temp files and corrupt
 * sidecars are skipped: a corrupt sidecar (which the atomic rename should prevent) only loses that
 * blob's cache. A blob cut into pieces by another version's layout rule is deleted (sidecar and
 * data): its piece numbers and digests mean other byte ranges today, and the supernode offers it cut
 * by today's rule.
 */
export async function loadSidecars (root: string): Promise<LoadedBlob[]> {
  const out: LoadedBlob[] = []
  for (const alg of await readdir(root)) {
    const dir = join(root, alg)
    let names: string[]
    try { names = await readdir(dir) } catch { continue } // not a directory: ignore stray files
    for (const name of names) {
      if (!name.endsWith('.json')) continue
      try {
        const path = join(dir, name)
        const side = JSON.parse(await readFile(path, 'utf8')) as Sidecar
        const digest = parseDigest(side.digest)
        if (`${digest.hex}.json` !== name) continue
        const layout = layoutFor(side.size)
        if ((side.pieceSize ?? BASE_PIECE_SIZE) !== layout.pieceSize) {
          await rm(path, { force: true })
          await rm(join(dir, digest.hex), { force: true })
          continue
        }
        const pieces = new Map<number, string>()
        for (const [k, v] of Object.entries(side.pieces)) {
          const index = Number(k)
          if (Number.isInteger(index) && index >= 0 && index < layout.pieceCount) pieces.set(index, v)
        }
        out.push({ digest: digest.value, layout, pieces, lastUsed: (await stat(path)).mtimeMs })
      } catch {
        // Unreadable or not a sidecar: skipped (see above).
      }
    }
  }
  return out
}

/** Writes the sidecar to a temp file, fsyncs it and renames it into place (never torn). */
export async function writeSidecar (path: string, sidecar: Sidecar): Promise<void> {
  await writeAtomically(path, JSON.stringify(sidecar))
}

async function writeAtomically (path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', 0o644)
  try {
    await fh.writeFile(text)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
}
