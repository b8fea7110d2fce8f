import type { Readable } from 'node:stream'
import type { PieceLayout } from '@damselfly/proto'

/** What the cache knows about one blob. */
export interface CachedBlob {
  readonly digest: string
  readonly layout: PieceLayout
  /** Index → piece digest, only for pieces whose bytes are durable. */
  readonly pieces: ReadonlyMap<number, string>
}

/**
 * The verified piece cache (port). Contract: a piece is reported held only after its bytes were
 * written at their offset and flushed to disk, and its metadata durably recorded; a crash at any
 * point never makes a partial piece look held. Callers write only verified pieces.
 */
export interface PieceCache {
  /** The blob's entry, or `undefined` if nothing of it is cached. */
  get: (digest: string) => Promise<CachedBlob | undefined>
  /** Records a verified piece. Idempotent; a held piece is not rewritten. */
  writePiece: (digest: string, layout: PieceLayout, index: number, pieceDigest: string, bytes: Uint8Array) => Promise<void>
  /** The bytes of a held piece, or `undefined` if it is not held. */
  readPiece: (digest: string, index: number) => Promise<Uint8Array | undefined>
  /**
   * Streams bytes `[start, end]` (inclusive), verified as they stream: a whole complete blob against
   * its digest, any other range against the digests of its covering pieces. The chunk carrying byte
   * `end` is released only after every check passed; on a mismatch (or a short file) the entry is
   * dropped and the stream errors, so a consumer using `pipeline()` never completes an unverified
   * range. Throws DF_ERR_PIECE_UNAVAILABLE at once when a covering piece is not held.
   */
  readRange: (digest: string, start: number, end: number, options?: { signal?: AbortSignal }) => Readable
  /** Forgets a blob and deletes its data. */
  drop: (digest: string) => Promise<void>
  /** Every blob with at least one held piece (used to re-report holdings to the supernode). */
  list: () => Promise<CachedBlob[]>
  close: () => Promise<void>
}

/** True when every piece of the blob is held. */
export function isComplete (blob: CachedBlob | undefined): blob is CachedBlob {
  return blob !== undefined && blob.pieces.size === blob.layout.pieceCount
}
