import { constants, createReadStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline, type Readable } from 'node:stream'
import { dfError, layoutFor, parseDigest, pieceRange, type PieceLayout } from '@damselfly/proto'
import type { CachedBlob, PieceCache } from './piece-cache.js'
import { planVerifiedRead, VerifyingStream } from './verified-read.js'

/**
 * Read size for streaming a blob from disk. The default 64 KiB costs a threadpool round trip, a
 * Buffer and a hash/socket call per 64 KiB (4,096 of each for a 256 MiB layer); 1 MiB cuts that
 * 16-fold while keeping what one read holds in memory small (about three chunks per response:
 * one being read, one being hashed, one in the socket).
 */
const READ_CHUNK = 1024 * 1024

interface Sidecar {
  digest: string
  size: number
  pieces: Record<string, string>
}

interface Entry {
  digest: string
  layout: PieceLayout
  pieces: Map<number, string>
}

/**
 * Piece cache on the local filesystem: one data file per blob at `blobs/<alg>/<hex>` (pieces written at
 * their offset) and a JSON sidecar `blobs/<alg>/<hex>.json` listing the held pieces and their digests.
 *
 * Why a sidecar rather than LevelDB: the metadata is per blob and tiny, is only ever read at start and
 * written by this process, and the sidecar lives next to its data so dropping a blob is two unlinks.
 * Crash safety comes from ordering: piece bytes are written and `fdatasync`ed first, then the sidecar
 * is written to a temp file, fsynced and atomically renamed over the old one. A crash before the rename
 * leaves the old sidecar (piece not held); a torn temp file is never read. Writes to one blob are
 * serialised so concurrent pieces cannot lose each other's sidecar updates.
 */
export class FsPieceCache implements PieceCache {
  readonly #root: string
  readonly #blobs = new Map<string, Entry>()
  readonly #locks = new Map<string, Promise<unknown>>()
  /** Configured quota in bytes (recorded; eviction is not implemented yet). */
  readonly quotaBytes: number | undefined

  private constructor (dataDir: string, quotaBytes: number | undefined) {
    this.#root = join(dataDir, 'blobs')
    this.quotaBytes = quotaBytes
  }

  /** Opens (creating if needed) the cache under `dataDir` and loads every sidecar. */
  static async open (dataDir: string, options: { quotaBytes?: number } = {}): Promise<FsPieceCache> {
    const cache = new FsPieceCache(dataDir, options.quotaBytes)
    await cache.#load()
    return cache
  }

  async #load (): Promise<void> {
    await mkdir(this.#root, { recursive: true })
    for (const alg of await readdir(this.#root)) {
      const dir = join(this.#root, alg)
      let names: string[]
      try { names = await readdir(dir) } catch { continue } // not a directory: ignore stray files
      for (const name of names) {
        if (!name.endsWith('.json')) continue
        try {
          const side = JSON.parse(await readFile(join(dir, name), 'utf8')) as Sidecar
          const digest = parseDigest(side.digest)
          if (`${digest.hex}.json` !== name) continue
          const layout = layoutFor(side.size)
          const pieces = new Map<number, string>()
          for (const [k, v] of Object.entries(side.pieces)) {
            const index = Number(k)
            if (Number.isInteger(index) && index >= 0 && index < layout.pieceCount) pieces.set(index, v)
          }
          this.#blobs.set(digest.value, { digest: digest.value, layout, pieces })
        } catch {
          // A corrupt sidecar (should not happen thanks to rename) only loses that blob's cache.
        }
      }
    }
  }

  #paths (digest: string): { dir: string, data: string, sidecar: string } {
    const d = parseDigest(digest)
    const dir = join(this.#root, d.algorithm)
    return { dir, data: join(dir, d.hex), sidecar: join(dir, `${d.hex}.json`) }
  }

  async #locked<T> (digest: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#locks.get(digest) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    const tail = next.catch(() => undefined)
    this.#locks.set(digest, tail)
    try {
      return await next
    } finally {
      if (this.#locks.get(digest) === tail) this.#locks.delete(digest)
    }
  }

  async get (digest: string): Promise<CachedBlob | undefined> {
    const e = this.#blobs.get(digest)
    return e === undefined ? undefined : snapshot(e)
  }

  async writePiece (digest: string, layout: PieceLayout, index: number, pieceDigest: string, bytes: Uint8Array): Promise<void> {
    const range = pieceRange(layout, index)
    if (bytes.byteLength !== range.length) throw new RangeError(`piece ${index} of ${digest}: ${bytes.byteLength} bytes, expected ${range.length}`)
    await this.#locked(digest, async () => {
      const existing = this.#blobs.get(digest)
      if (existing?.pieces.has(index) === true) return
      const p = this.#paths(digest)
      await mkdir(p.dir, { recursive: true })
      const fh = await open(p.data, constants.O_RDWR | constants.O_CREAT, 0o644)
      try {
        let written = 0
        while (written < bytes.byteLength) {
          const r = await fh.write(bytes, written, bytes.byteLength - written, range.start + written)
          written += r.bytesWritten
        }
        await fh.datasync()
      } finally {
        await fh.close()
      }
      const pieces = new Map(existing?.pieces ?? [])
      pieces.set(index, pieceDigest)
      await writeAtomically(p.sidecar, JSON.stringify({ digest, size: layout.size, pieces: Object.fromEntries(pieces) } satisfies Sidecar))
      this.#blobs.set(digest, { digest, layout: existing?.layout ?? layout, pieces })
    })
  }

  async readPiece (digest: string, index: number): Promise<Uint8Array | undefined> {
    const e = this.#blobs.get(digest)
    if (e?.pieces.has(index) !== true) return undefined
    const range = pieceRange(e.layout, index)
    const out = new Uint8Array(range.length)
    const fh = await open(this.#paths(digest).data, 'r')
    try {
      let read = 0
      while (read < range.length) {
        const r = await fh.read(out, read, range.length - read, range.start + read)
        if (r.bytesRead === 0) return undefined // file shorter than recorded: treat as not held
        read += r.bytesRead
      }
    } finally {
      await fh.close()
    }
    return out
  }

  readRange (digest: string, start: number, end: number, options: { signal?: AbortSignal } = {}): Readable {
    const e = this.#blobs.get(digest)
    if (e === undefined) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `${digest} is not held`)
    const plan = planVerifiedRead(snapshot(e), start, end)
    const verifier = new VerifyingStream(plan, { start, end }, async () => { await this.drop(digest) })
    const file = createReadStream(this.#paths(digest).data, { start: plan.readStart, end: plan.readEnd, highWaterMark: READ_CHUNK, ...(options.signal === undefined ? {} : { signal: options.signal }) })
    // Errors reach the consumer through `verifier`, which pipeline() destroys with them. A data file
    // that vanished under its sidecar is a broken entry: forget it so the next pull refetches.
    pipeline(file, verifier, (err) => {
      if ((err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') void this.drop(digest).catch(() => undefined)
    })
    return verifier
  }

  async drop (digest: string): Promise<void> {
    await this.#locked(digest, async () => {
      this.#blobs.delete(digest)
      const p = this.#paths(digest)
      await rm(p.sidecar, { force: true })
      await rm(p.data, { force: true })
    })
  }

  async list (): Promise<CachedBlob[]> {
    return [...this.#blobs.values()].filter(e => e.pieces.size > 0).map(snapshot)
  }

  async close (): Promise<void> {
    await Promise.all([...this.#locks.values()])
  }
}

function snapshot (e: Entry): CachedBlob {
  return { digest: e.digest, layout: e.layout, pieces: new Map(e.pieces) }
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
