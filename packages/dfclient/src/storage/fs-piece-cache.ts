import { mkdir, rm, statfs, utimes } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { dfError, isDfError, parseDigest, pieceRange, type PieceLayout, type SizeSpec } from '@damselfly/proto'
import { CacheLedger, type EvictionReason } from './cache-ledger.js'
import { readChunks, readExactly, syncData, writeAt } from './data-file.js'
import type { CachedBlob, PieceBytesOptions, PieceCache } from './piece-cache.js'
import { loadSidecars, writeSidecar } from './sidecar.js'
import { writeFailureReason, type CacheWriteFailure } from './write-failures.js'
import { verifiedFileRead } from './verify-ahead.js'

/** How often idle blobs are checked against the TTL. */
const SWEEP_INTERVAL_MS = 60_000
/** A blob's last use is written to its sidecar's mtime at most this often (LRU order survives restarts). */
const MARK_USED_INTERVAL_MS = 10 * 60_000

/** Why blobs left the cache: evicted (`quota`, `ttl`) or dropped by a caller (corrupt, mismatched). */
export type RemovalReason = EvictionReason | 'dropped'

export interface FsPieceCacheOptions {
  /** Quota: bytes, or a share of the filesystem holding `dataDir`. Absent = no quota. */
  quota?: SizeSpec | undefined
  /** Evict blobs unused for longer than this (0 or absent = no TTL). */
  ttlMs?: number | undefined
  /** Called after blobs left the cache, e.g. to tell the supernode this peer no longer holds them. */
  onRemoved?: ((digests: string[], reason: RemovalReason) => void) | undefined
  /** Called when a verified piece could not be cached (the download hands it to its reader instead). */
  onWriteFailed?: ((failure: CacheWriteFailure) => void) | undefined
  now?: () => number
}

/** Disk usage of the cache, as accounted (see cache-ledger.ts). */
export interface CacheUsage {
  usedBytes: number
  quotaBytes: number | undefined
  blobs: number
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
 * Quota and GC: every staged piece is admitted against the quota first, evicting whole blobs least
 * recently used first; blobs unused for longer than the TTL go too. A blob being read, served to a
 * peer or downloaded (`acquire`), one with staged pieces not yet committed, and a pinned one are never
 * evicted. When nothing can be evicted the piece is refused (DF_ERR_CACHE_FULL): the download then
 * hands the verified bytes straight to its reader, so a full cache never fails a pull.
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
  /** File removals in flight: a new write of the same blob waits for them. */
  readonly #removing = new Map<string, Promise<void>>()
  readonly #ledger: CacheLedger
  readonly #onRemoved: FsPieceCacheOptions['onRemoved']
  readonly #onWriteFailed: FsPieceCacheOptions['onWriteFailed']
  readonly #now: () => number
  readonly #markedUsed = new Map<string, number>()
  #sweeper: NodeJS.Timeout | undefined

  private constructor (dataDir: string, quotaBytes: number | undefined, options: FsPieceCacheOptions) {
    this.#root = join(dataDir, 'blobs')
    this.#now = options.now ?? Date.now
    this.#ledger = new CacheLedger({ quotaBytes, ttlMs: options.ttlMs, now: this.#now })
    this.#onRemoved = options.onRemoved
    this.#onWriteFailed = options.onWriteFailed
  }

  /** Quota in bytes (a `%` quota resolved against the filesystem at open); `undefined` = none. */
  get quotaBytes (): number | undefined { return this.#ledger.quotaBytes }

  /**
   * Opens (creating if needed) the cache under `dataDir`, loads every sidecar, evicts down to the quota
   * (it may have shrunk since the last run) and starts the TTL sweep.
   */
  static async open (dataDir: string, options: FsPieceCacheOptions = {}): Promise<FsPieceCache> {
    const root = join(dataDir, 'blobs')
    await mkdir(root, { recursive: true })
    let quotaBytes: number | undefined
    if (options.quota !== undefined && 'bytes' in options.quota) quotaBytes = options.quota.bytes
    else if (options.quota !== undefined) {
      const fs = await statfs(root)
      quotaBytes = Math.floor(fs.blocks * fs.bsize * options.quota.percent / 100)
    }
    const cache = new FsPieceCache(dataDir, quotaBytes, options)
    for (const b of await loadSidecars(root)) {
      cache.#blobs.set(b.digest, { digest: b.digest, layout: b.layout, pieces: b.pieces })
      cache.#ledger.load(b.digest, new Map([...b.pieces.keys()].map(i => [i, pieceRange(b.layout, i).length])), b.layout.pieceCount, b.lastUsed)
    }
    cache.sweep()
    const overQuota = cache.#ledger.planAdmission(0, '', d => cache.#busy(d))
    if (overQuota.victims.length > 0) cache.#evict(overQuota.victims, 'quota')
    if (cache.#ledger.ttlMs !== undefined) {
      cache.#sweeper = setInterval(() => { cache.sweep() }, Math.min(SWEEP_INTERVAL_MS, cache.#ledger.ttlMs))
      cache.#sweeper.unref()
    }
    return cache
  }

  /** Accounted disk usage. */
  usage (): CacheUsage {
    return { usedBytes: this.#ledger.usedBytes, quotaBytes: this.#ledger.quotaBytes, blobs: this.#blobs.size }
  }

  /**
   * Marks a blob in use (never evicted) until the returned function is called: a download holds one
   * for as long as it runs, so pieces it committed cannot vanish before its reader gets to them.
   */
  acquire (digest: string): () => void {
    return this.#ledger.acquire(digest)
  }

  /** Pins a blob (never evicted) for `forMs` milliseconds, or until `unpin` (e.g. a preheat). */
  pin (digest: string, forMs?: number): void {
    this.#ledger.pin(digest, forMs)
  }

  unpin (digest: string): void {
    this.#ledger.unpin(digest)
  }

  /** Pieces staged and not yet committed, per blob (re-reported to the supernode after a re-announce). */
  staged (): Array<{ digest: string, pieces: number[] }> {
    return [...this.#staged].filter(([, set]) => set.size > 0).map(([digest, set]) => ({ digest, pieces: [...set].sort((a, b) => a - b) }))
  }

  /** Evicts idle blobs unused for longer than the TTL (runs periodically; exposed for tests). */
  sweep (): string[] {
    const expired = this.#ledger.expired(d => this.#busy(d))
    if (expired.length > 0) this.#evict(expired, 'ttl')
    return expired
  }

  /** Busy beyond leases and pins: pieces staged and not yet committed, or a commit/drop running. */
  #busy (digest: string): boolean {
    return (this.#staged.get(digest)?.size ?? 0) > 0 || (this.#toCommit.get(digest)?.length ?? 0) > 0 || this.#locks.has(digest)
  }

  /**
   * Removes blobs now (maps, accounting, epoch) and their files in the background; a new write of the
   * same blob waits for the removal (`#removing`).
   */
  #evict (digests: string[], reason: RemovalReason): void {
    for (const digest of digests) this.#forget(digest)
    for (const digest of digests) this.#removeFiles(digest)
    this.#onRemoved?.(digests, reason)
  }

  #forget (digest: string): void {
    this.#epochs.set(digest, this.#epoch(digest) + 1)
    this.#staged.delete(digest)
    this.#stagedLayout.delete(digest)
    this.#blobs.delete(digest)
    this.#markedUsed.delete(digest)
    this.#ledger.forget(digest)
  }

  #removeFiles (digest: string): Promise<void> {
    const removal = this.#locked(digest, async () => {
      const p = this.#paths(digest)
      await rm(p.sidecar, { force: true })
      await rm(p.data, { force: true })
    }).finally(() => { if (this.#removing.get(digest) === removal) this.#removing.delete(digest) })
    this.#removing.set(digest, removal)
    removal.catch(() => undefined) // awaited by drop(); an eviction's failure leaves a stray file only
    return removal
  }

  /** Touches the blob for LRU, and now and then its sidecar's mtime, so the order survives a restart. */
  #used (digest: string): void {
    this.#ledger.touch(digest)
    const now = this.#now()
    if (!this.#blobs.has(digest) || now - (this.#markedUsed.get(digest) ?? 0) < MARK_USED_INTERVAL_MS) return
    this.#markedUsed.set(digest, now)
    const t = new Date(now)
    utimes(this.#paths(digest).sidecar, t, t).catch(() => undefined) // advisory: LRU order only
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
    const removing = this.#removing.get(digest)
    if (removing !== undefined) await removing.catch(() => undefined)
    if (this.#epoch(digest) !== epoch) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `${digest} was dropped before piece ${index} was written`)
    // Admission, with no await between the plan and the reservation, so concurrent stages see each other.
    const incoming = this.#ledger.admissionBytes(digest, index, range.length, layout.pieceCount)
    const plan = this.#ledger.planAdmission(incoming, digest, d => this.#busy(d))
    if (!plan.fits) {
      throw this.#writeFailed(digest, index, dfError('DF_ERR_CACHE_FULL', `no room for piece ${index} of ${digest} under the ${String(this.#ledger.quotaBytes)}-byte quota: every cached blob is in use or pinned`))
    }
    if (plan.victims.length > 0) this.#evict(plan.victims, 'quota')
    this.#ledger.addPiece(digest, index, range.length, layout.pieceCount)
    const p = this.#paths(digest)
    try {
      await mkdir(p.dir, { recursive: true })
      await writeAt(p.data, bytes, range.start)
    } catch (err) {
      if (this.#epoch(digest) === epoch && this.#staged.get(digest)?.has(index) !== true) this.#ledger.removePiece(digest, index)
      throw this.#writeFailed(digest, index, err)
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
      await syncData(p.data)
      const layout = existing?.layout ?? (valid[0] as PendingCommit).layout
      const pieces = new Map(existing?.pieces ?? [])
      for (const c of valid) pieces.set(c.index, c.pieceDigest)
      await writeSidecar(p.sidecar, { digest, size: layout.size, pieceSize: layout.pieceSize, pieces: Object.fromEntries(pieces) })
      // Dropped or evicted meanwhile: the removal queued behind this flush deletes what it wrote.
      if (valid.some(c => c.epoch !== this.#epoch(digest))) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `${digest} was dropped while pieces were committed`)
      this.#blobs.set(digest, { digest, layout, pieces })
      this.#ledger.touch(digest)
      for (const c of valid) staged?.delete(c.index)
      if (staged?.size === 0) this.#staged.delete(digest)
      for (const c of valid) c.resolve()
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      if (!isDfError(error)) for (const c of valid) this.#writeFailed(digest, c.index, error)
      for (const c of valid) c.reject(error)
    }
  }

  /** Reports a piece that could not be cached; returns the error for the caller to throw. */
  #writeFailed (digest: string, index: number, err: unknown): Error {
    const error = err instanceof Error ? err : new Error(String(err))
    this.#onWriteFailed?.({ digest, index, reason: writeFailureReason(error), error })
    return error
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
    const release = this.#ledger.acquire(digest)
    this.#used(digest)
    try {
      yield * readChunks(this.#paths(digest).data, start, end, chunkSize, () => this.#epoch(digest) === epoch, `piece ${index} of ${digest}`)
    } finally {
      release()
    }
  }

  async readPiece (digest: string, index: number): Promise<Uint8Array | undefined> {
    const e = this.#blobs.get(digest)
    if (e?.pieces.has(index) !== true) return undefined
    const range = pieceRange(e.layout, index)
    return await readExactly(this.#paths(digest).data, range.start, range.length)
  }

  readRange (digest: string, start: number, end: number, options: { signal?: AbortSignal } = {}): Readable {
    const e = this.#blobs.get(digest)
    if (e === undefined) throw dfError('DF_ERR_PIECE_UNAVAILABLE', `${digest} is not held`)
    const stream = verifiedFileRead(this.#paths(digest).data, snapshot(e), start, end, {
      signal: options.signal,
      drop: async () => { await this.drop(digest) },
      // A data file that vanished under its sidecar is a broken entry: forget it so the next pull refetches.
      onMissingFile: () => { void this.drop(digest).catch(() => undefined) }
    })
    // In use until the stream closes (ended, failed or destroyed by its consumer).
    const release = this.#ledger.acquire(digest)
    stream.once('close', release)
    this.#used(digest)
    return stream
  }

  async drop (digest: string): Promise<void> {
    const known = this.#blobs.has(digest) || this.#staged.has(digest)
    this.#forget(digest)
    await this.#removeFiles(digest)
    if (known) this.#onRemoved?.([digest], 'dropped')
  }

  #epoch (digest: string): number {
    return this.#epochs.get(digest) ?? 0
  }

  async list (): Promise<CachedBlob[]> {
    return [...this.#blobs.values()].filter(e => e.pieces.size > 0).map(snapshot)
  }

  async close (): Promise<void> {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper)
    await Promise.all([...this.#locks.values()])
  }
}

function snapshot (e: Entry): CachedBlob {
  return { digest: e.digest, layout: e.layout, pieces: new Map(e.pieces) }
}
