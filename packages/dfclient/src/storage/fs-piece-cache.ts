import { constants, createReadStream } from 'node:fs'
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline, type Readable } from 'node:stream'
import { dfError, layoutFor, parseDigest, pieceRange, type PieceLayout } from '@damselfly/proto'
import type { CachedBlob, PieceBytesOptions, PieceCache } from './piece-cache.js'
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

interface PendingCommit {
  index: number
  pieceDigest: string
  layout: PieceLayout
  epoch: number
  resolve: () => void
  reject: (err: Error) => void
}

/** Default chunk of `readPieceBytes`: one threadpool read per MiB, little held per reader. */
const PIECE_READ_CHUNK = 1024 * 1024

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
  /** Pieces written at their offset but not yet durable/held, per blob. Cleared by `drop`. */
  readonly #staged = new Map<string, Set<number>>()
  /** Bumped by `drop`, so a stage or commit that raced with it does not record a piece of the old file. */
  readonly #epochs = new Map<string, number>()
  readonly #toCommit = new Map<string, PendingCommit[]>()
  /** Layout of blobs with staged pieces but no held one yet (so staged bytes can be read). */
  readonly #stagedLayout = new Map<string, PieceLayout>()
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
    if (this.#blobs.get(digest)?.pieces.has(index) === true) return
    await this.stagePiece(digest, layout, index, bytes)
    await this.commitPiece(digest, layout, index, pieceDigest)
  }

  async stagePiece (digest: string, layout: PieceLayout, index: number, bytes: Uint8Array): Promise<void> {
    const range = pieceRange(layout, index)
    if (bytes.byteLength !== range.length) throw new RangeError(`piece ${index} of ${digest}: ${bytes.byteLength} bytes, expected ${range.length}`)
    if (this.#blobs.get(digest)?.pieces.has(index) === true) return
    const epoch = this.#epoch(digest)
    const p = this.#paths(digest)
    await mkdir(p.dir, { recursive: true })
    const fh = await open(p.data, constants.O_RDWR | constants.O_CREAT, 0o644)
    try {
      let written = 0
      while (written < bytes.byteLength) {
        const r = await fh.write(bytes, written, bytes.byteLength - written, range.start + written)
        written += r.bytesWritten
      }
    } finally {
      await fh.close()
    }
    if (this.#epoch(digest) !== epoch) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `${digest} was dropped while piece ${index} was written`)
    let staged = this.#staged.get(digest)
    if (staged === undefined) { staged = new Set(); this.#staged.set(digest, staged) }
    staged.add(index)
    if (!this.#stagedLayout.has(digest)) this.#stagedLayout.set(digest, layout)
  }

  async commitPiece (digest: string, layout: PieceLayout, index: number, pieceDigest: string): Promise<void> {
    const epoch = this.#epoch(digest)
    let queue = this.#toCommit.get(digest)
    if (queue === undefined) { queue = []; this.#toCommit.set(digest, queue) }
    const done = new Promise<void>((resolve, reject) => { queue.push({ index, pieceDigest, layout, epoch, resolve, reject }) })
    // Every commit queued before this flush runs shares its one data flush and sidecar write.
    void this.#locked(digest, async () => { await this.#flushCommits(digest) }).catch(() => undefined)
    await done
  }

  async #flushCommits (digest: string): Promise<void> {
    const batch = this.#toCommit.get(digest)
    if (batch === undefined || batch.length === 0) return
    this.#toCommit.delete(digest)
    const staged = this.#staged.get(digest)
    const existing = this.#blobs.get(digest)
    const valid: PendingCommit[] = []
    for (const c of batch) {
      if (existing?.pieces.has(c.index) === true) c.resolve()
      else if (c.epoch !== this.#epoch(digest) || staged?.has(c.index) !== true) c.reject(dfError('DF_ERR_PIECE_UNAVAILABLE', `piece ${c.index} of ${digest} is not staged`))
      else valid.push(c)
    }
    if (valid.length === 0) return
    try {
      const p = this.#paths(digest)
      const fh = await open(p.data, constants.O_RDWR)
      try { await fh.datasync() } finally { await fh.close() }
      const layout = existing?.layout ?? (valid[0] as PendingCommit).layout
      const pieces = new Map(existing?.pieces ?? [])
      for (const c of valid) pieces.set(c.index, c.pieceDigest)
      await writeAtomically(p.sidecar, JSON.stringify({ digest, size: layout.size, pieces: Object.fromEntries(pieces) } satisfies Sidecar))
      this.#blobs.set(digest, { digest, layout, pieces })
      for (const c of valid) staged?.delete(c.index)
      if (staged?.size === 0) this.#staged.delete(digest)
      for (const c of valid) c.resolve()
    } catch (err) {
      for (const c of valid) c.reject(err instanceof Error ? err : new Error(String(err)))
    }
  }

  layoutOf (digest: string): PieceLayout | undefined {
    return this.#blobs.get(digest)?.layout ?? this.#stagedLayout.get(digest)
  }

  hasPieceBytes (digest: string, index: number): boolean {
    return this.#readable(digest, index, false)
  }

  #readable (digest: string, index: number, heldOnly: boolean): boolean {
    return this.#blobs.get(digest)?.pieces.has(index) === true || (!heldOnly && this.#staged.get(digest)?.has(index) === true)
  }

  async * readPieceBytes (digest: string, index: number, options: PieceBytesOptions = {}): AsyncGenerator<Uint8Array> {
    const e = this.#blobs.get(digest)
    const layout = e?.layout ?? this.#stagedLayout.get(digest)
    if (layout === undefined || !this.#readable(digest, index, options.heldOnly === true)) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `piece ${index} of ${digest} is not held`)
    const piece = pieceRange(layout, index)
    const start = options.start ?? piece.start
    const end = options.end ?? piece.end
    const chunkSize = options.chunkSize ?? PIECE_READ_CHUNK
    if (start < piece.start || end > piece.end || start > end) throw new RangeError(`bytes ${start}-${end} are not inside piece ${index} of ${digest}`)
    const epoch = this.#epoch(digest)
    const fh = await open(this.#paths(digest).data, 'r')
    try {
      for (let pos = start; pos < end;) {
        const n = Math.min(chunkSize, end - pos)
        const buf = Buffer.allocUnsafeSlow(n)
        let got = 0
        while (got < n) {
          const r = await fh.read(buf, got, n - got, pos + got)
          if (r.bytesRead === 0) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `${digest} data ends before byte ${pos + got}`)
          got += r.bytesRead
        }
        // Dropped (or replaced) while reading: these bytes may belong to another file.
        if (this.#epoch(digest) !== epoch) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `${digest} was dropped while piece ${index} was read`)
        pos += n
        yield buf
      }
    } finally {
      await fh.close()
    }
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
    this.#epochs.set(digest, this.#epoch(digest) + 1)
    this.#staged.delete(digest)
    this.#stagedLayout.delete(digest)
    await this.#locked(digest, async () => {
      this.#blobs.delete(digest)
      const p = this.#paths(digest)
      await rm(p.sidecar, { force: true })
      await rm(p.data, { force: true })
    })
  }

  #epoch (digest: string): number {
    return this.#epochs.get(digest) ?? 0
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
