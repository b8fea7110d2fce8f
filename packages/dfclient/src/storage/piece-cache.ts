import type { Readable } from 'node:stream'
import type { PieceLayout } from '@damselfly/proto'

/** What the cache knows about one blob. */
export interface CachedBlob {
  readonly digest: string
  readonly layout: PieceLayout
  /** Index → piece digest, only for pieces whose bytes are durable. */
  readonly pieces: ReadonlyMap<number, string>
}

export interface PieceBytesOptions {
  /** First blob byte (inclusive); must lie inside the piece. */
  start?: number
  /** Last blob byte (exclusive); must lie inside the piece. */
  end?: number
  chunkSize?: number
  /** Only a held (durable) piece, not a merely staged one: what the piece server offers peers. */
  heldOnly?: boolean
}

/**
 * The verified piece cache (port). Contract: a piece is reported held only after its bytes were
 * written at their offset and flushed to disk, and its metadata durably recorded; a crash at any
 * point never makes a partial piece look held. Callers write only verified pieces.
 */
export interface PieceCache {
  /** The blob's entry, or `undefined` if nothing of it is cached. */
  get: (digest: string) => Promise<CachedBlob | undefined>
  /** Records a verified piece (`stagePiece` then `commitPiece`). Idempotent; a held piece is not rewritten. */
  writePiece: (digest: string, layout: PieceLayout, index: number, pieceDigest: string, bytes: Uint8Array) => Promise<void>
  /**
   * Writes the bytes of a verified piece at its offset without making it held: it becomes readable
   * through `readPieceBytes` at once (page cache), durable and held only after `commitPiece`. The
   * caller may reuse `bytes` once this resolves. A crash before the commit leaves the piece not held.
   */
  stagePiece: (digest: string, layout: PieceLayout, index: number, bytes: Uint8Array) => Promise<void>
  /**
   * Makes a staged piece durable and held (data flushed, metadata recorded). Commits that arrive
   * together share one flush. Rejects when the piece is not staged (e.g. the blob was dropped since).
   */
  commitPiece: (digest: string, layout: PieceLayout, index: number, pieceDigest: string) => Promise<void>
  /**
   * Streams blob bytes `[start, end)` (default: the whole piece) of one staged or held piece in chunks
   * of at most `chunkSize` (default 1 MiB), each a new buffer the consumer owns. Not verified here:
   * staged pieces were verified before staging and held ones before they were written. Throws
   * DF_ERR_PIECE_UNAVAILABLE when the piece is neither (or stops being so, e.g. dropped, mid-read).
   */
  readPieceBytes: (digest: string, index: number, options?: PieceBytesOptions) => AsyncIterable<Uint8Array>
  /** True when the piece is staged or held. */
  hasPieceBytes: (digest: string, index: number) => boolean
  /** The layout of a blob with at least one staged or held piece. */
  layoutOf: (digest: string) => PieceLayout | undefined
  /** The bytes of a held piece, or `undefined` if it is not held. */
  readPiece: (digest: string, index: number) => Promise<Uint8Array | undefined>
  /**
   * Streams bytes `[start, end]` (inclusive), verified twice. Ahead: no byte of a piece is emitted
   * before that whole piece, as stored, hashed to its recorded digest; a corrupt piece drops the entry
   * and errors with DF_ERR_PIECE_DIGEST_MISMATCH having emitted only bytes of earlier, good pieces, so
   * the reader can fetch the rest elsewhere. As they stream: a whole complete blob against its digest,
   * any other range against its covering pieces, the chunk carrying byte `end` released only after
   * every check passed (this catches bytes changed between the two reads: the range never completes).
   * Throws DF_ERR_PIECE_UNAVAILABLE at once when a covering piece is not held.
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
