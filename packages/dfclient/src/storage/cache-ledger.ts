/**
 * Disk accounting and eviction policy of the piece cache (no I/O): how many bytes each blob takes on
 * disk, when each was last used, which are in use (leased) or pinned, and which to evict to admit new
 * bytes under the quota or because they outlived the TTL.
 *
 * Bytes are counted as the filesystem allocates them, in 4 KiB blocks: every piece but a blob's last
 * is a multiple of 4 KiB and lies at a multiple of the piece size in a sparse data file, so the data
 * file takes the sum of its written pieces rounded up per piece; the JSON sidecar takes its own
 * blocks, counted from the first piece at the size it has once every piece is held (at most ~40 KiB),
 * so committing pieces never grows a blob past what admitting them allowed. That is what `du`
 * reports, so the quota holds for the disk, not just for a logical count.
 */
export const BLOCK_BYTES = 4096

/** Sidecar size in blocks for a blob of `pieces` pieces, all held: ~120 bytes of frame, ~80 per piece. */
export function sidecarBytes (pieces: number): number {
  return roundUp(120 + 80 * pieces)
}

export function roundUp (bytes: number): number {
  return Math.ceil(bytes / BLOCK_BYTES) * BLOCK_BYTES
}

export type EvictionReason = 'quota' | 'ttl'

interface Usage {
  /** Piece index → accounted data bytes (staged or held). */
  pieces: Map<number, number>
  dataBytes: number
  /** Blocks of the sidecar (0 until the first piece). */
  sidecar: number
  lastUsed: number
  leases: number
  /** Pinned until this time (ms since epoch); 0 = not pinned. */
  pinnedUntil: number
}

export interface CacheLedgerInit {
  /** Quota in bytes; `undefined` = no quota. */
  quotaBytes?: number | undefined
  /** Blobs unused for longer than this are evicted; `undefined` or 0 = no TTL. */
  ttlMs?: number | undefined
  now?: () => number
}

/**
 * Tracks usage per blob. A blob is *busy* (never a victim) while it holds a lease (a read, a piece
 * served to a peer, a download in progress), while it is pinned, or while the caller's `busy` check
 * says so (pieces staged but not committed).
 */
export class CacheLedger {
  readonly quotaBytes: number | undefined
  readonly ttlMs: number | undefined
  readonly #now: () => number
  readonly #usage = new Map<string, Usage>()
  #used = 0

  constructor (init: CacheLedgerInit = {}) {
    this.quotaBytes = init.quotaBytes
    this.ttlMs = init.ttlMs === 0 ? undefined : init.ttlMs
    this.#now = init.now ?? Date.now
  }

  /** Accounted bytes of every blob. */
  get usedBytes (): number { return this.#used }

  get blobCount (): number { return this.#usage.size }

  /** Accounted bytes of one blob (0 when unknown). */
  bytesOf (digest: string): number {
    const u = this.#usage.get(digest)
    return u === undefined ? 0 : u.dataBytes + u.sidecar
  }

  /** What admitting piece `index` of `length` bytes of a `pieceCount`-piece blob would add. */
  admissionBytes (digest: string, index: number, length: number, pieceCount: number): number {
    const u = this.#usage.get(digest)
    if (u?.pieces.has(index) === true) return 0
    return roundUp(length) + (u === undefined || u.sidecar === 0 ? sidecarBytes(pieceCount) : 0)
  }

  /** Records a staged piece's bytes (idempotent per index). */
  addPiece (digest: string, index: number, length: number, pieceCount: number): void {
    const u = this.#entry(digest)
    if (u.pieces.has(index)) return
    const before = this.bytesOf(digest)
    const bytes = roundUp(length)
    u.pieces.set(index, bytes)
    u.dataBytes += bytes
    if (u.sidecar === 0) u.sidecar = sidecarBytes(pieceCount)
    u.lastUsed = this.#now()
    this.#used += this.bytesOf(digest) - before
  }

  /** Undoes `addPiece` for a piece whose write failed. */
  removePiece (digest: string, index: number): void {
    const u = this.#usage.get(digest)
    const bytes = u?.pieces.get(index)
    if (u === undefined || bytes === undefined) return
    const before = this.bytesOf(digest)
    u.pieces.delete(index)
    u.dataBytes -= bytes
    if (u.pieces.size === 0) u.sidecar = 0
    this.#used += this.bytesOf(digest) - before
  }

  /** Records a blob found on disk at start; `lastUsed` is when it was last used before the restart. */
  load (digest: string, pieceLengths: ReadonlyMap<number, number>, pieceCount: number, lastUsed: number): void {
    this.forget(digest)
    for (const [index, length] of pieceLengths) this.addPiece(digest, index, length, pieceCount)
    this.#entry(digest).lastUsed = lastUsed
  }

  /** Forgets a blob; returns the bytes it accounted for. */
  forget (digest: string): number {
    const bytes = this.bytesOf(digest)
    const u = this.#usage.get(digest)
    if (u === undefined) return 0
    this.#usage.delete(digest)
    this.#used -= bytes
    // A lease or pin outlives the data: a re-download of the same blob while it is held stays busy.
    if (u.leases > 0 || u.pinnedUntil > this.#now()) this.#usage.set(digest, { ...emptyUsage(this.#now()), leases: u.leases, pinnedUntil: u.pinnedUntil })
    return bytes
  }

  touch (digest: string): void {
    const u = this.#usage.get(digest)
    if (u !== undefined) u.lastUsed = this.#now()
  }

  lastUsed (digest: string): number | undefined {
    return this.#usage.get(digest)?.lastUsed
  }

  /** Marks the blob in use until the returned function is called (idempotent). */
  acquire (digest: string): () => void {
    const u = this.#entry(digest)
    u.leases++
    u.lastUsed = this.#now()
    let released = false
    return () => {
      if (released) return
      released = true
      // Looked up again: the entry may have been replaced by `forget`.
      const cur = this.#usage.get(digest)
      if (cur === undefined) return
      cur.leases = Math.max(0, cur.leases - 1)
      cur.lastUsed = this.#now()
      this.#dropIfEmpty(digest, cur)
    }
  }

  /** Pins a blob (never evicted) for `forMs`, or until `unpin`. */
  pin (digest: string, forMs = Infinity): void {
    const u = this.#entry(digest)
    u.pinnedUntil = Math.max(u.pinnedUntil, this.#now() + forMs)
  }

  unpin (digest: string): void {
    const u = this.#usage.get(digest)
    if (u === undefined) return
    u.pinnedUntil = 0
    this.#dropIfEmpty(digest, u)
  }

  isPinned (digest: string): boolean {
    return (this.#usage.get(digest)?.pinnedUntil ?? 0) > this.#now()
  }

  isLeased (digest: string): boolean {
    return (this.#usage.get(digest)?.leases ?? 0) > 0
  }

  /**
   * The blobs to evict, least recently used first, so that `incoming` more bytes fit under the
   * quota; `fits` is false when even evicting every idle blob is not enough. `keep` is never chosen.
   */
  planAdmission (incoming: number, keep: string, busy: (digest: string) => boolean): { victims: string[], fits: boolean } {
    if (this.quotaBytes === undefined) return { victims: [], fits: true }
    let excess = this.#used + incoming - this.quotaBytes
    if (excess <= 0) return { victims: [], fits: true }
    const victims: string[] = []
    for (const digest of this.#idleByAge(busy)) {
      if (digest === keep) continue
      const bytes = this.bytesOf(digest)
      if (bytes === 0) continue
      victims.push(digest)
      excess -= bytes
      if (excess <= 0) break
    }
    return { victims, fits: excess <= 0 }
  }

  /** Idle blobs unused for longer than the TTL. */
  expired (busy: (digest: string) => boolean): string[] {
    const ttl = this.ttlMs
    if (ttl === undefined) return []
    const cutoff = this.#now() - ttl
    return this.#idleByAge(busy).filter(d => (this.#usage.get(d)?.lastUsed ?? Infinity) < cutoff)
  }

  #idleByAge (busy: (digest: string) => boolean): string[] {
    const now = this.#now()
    return [...this.#usage.entries()]
      .filter(([d, u]) => u.leases === 0 && u.pinnedUntil <= now && !busy(d))
      .sort((a, b) => a[1].lastUsed - b[1].lastUsed)
      .map(([d]) => d)
  }

  #entry (digest: string): Usage {
    let u = this.#usage.get(digest)
    if (u === undefined) this.#usage.set(digest, u = emptyUsage(this.#now()))
    return u
  }

  /** An entry that only carried a lease or pin for a blob with no bytes left goes with them. */
  #dropIfEmpty (digest: string, u: Usage): void {
    if (u.leases === 0 && u.pinnedUntil <= this.#now() && u.pieces.size === 0) this.#usage.delete(digest)
  }
}

function emptyUsage (now: number): Usage {
  return { pieces: new Map(), dataBytes: 0, sidecar: 0, lastUsed: now, leases: 0, pinnedUntil: 0 }
}
