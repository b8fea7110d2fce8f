import type { PieceResult, PieceSource, PiecesResponse, TaskInfo } from '@damselfly/proto'

/**
 * The ports the blob download depends on. The domain (blob-download.ts) sees only these; the adapters
 * are the supernode HTTP client, the libp2p piece fetcher, the filesystem piece cache and undici.
 */

/** The supernode's task API, as the download needs it. */
export interface TaskDirectory {
  /** Registers interest in a blob; resolves once its size is known. Throws DfErrors. */
  registerTask: (request: { digest: string, url: string, authorization?: string }, signal: AbortSignal) => Promise<TaskInfo>
  /**
   * Long-polls piece availability newer than `since`; `at` is where the reader is: the piece it needs
   * next and its read-ahead window (only pieces in that window are listed).
   */
  pollPieces: (digest: string, since: number, waitMs: number, signal: AbortSignal, at?: { from: number, window: number }) => Promise<PiecesResponse>
  /** Tells the supernode this peer now serves these pieces (fire and forget; the adapter batches). */
  reportPieces: (digest: string, indexes: number[]) => void
  /**
   * Tells the supernode how piece transfers went (fire and forget; the adapter batches them with the
   * held-piece reports). One result per fetch attempt that ended other than by our own abort.
   */
  reportPieceResults?: (digest: string, results: PieceResult[]) => void
}

/**
 * Fetches one piece from one source and verifies it against `expected.digest`, or throws a DfError.
 * With `into`, the bytes may be received into it (the result is then a view of it; the caller owns both).
 */
export interface PieceFetcher {
  fetchPiece: (source: PieceSource, request: { taskId: string, index: number }, expected: { size: number, digest: string }, signal: AbortSignal, into?: Uint8Array, onBytes?: (n: number) => void) => Promise<Uint8Array>
}

/** Byte stream of the blob straight from the upstream registry, starting at `offset` (end inclusive). */
export type UpstreamRangeOpener = (range: { start: number, end: number }, signal: AbortSignal) => Promise<AsyncIterable<Uint8Array>>

/** What the download reports for metrics and logs. */
export interface DownloadEvents {
  pieceReceived?: (bytes: number, from: 'peer' | 'supernode') => void
  verifyFailure?: (info: { index: number, peerId: string, error: Error }) => void
  sourceFailure?: (info: { index: number, peerId: string, error: Error }) => void
  upstreamContinuation?: (info: { offset: number, error: Error }) => void
  /** The piece the reader waits for was slow from `slowPeerId`; it is now also fetched from `peerId`. */
  slowPieceRetry?: (info: { index: number, slowPeerId: string, peerId: string, slowMs: number, typicalMs: number }) => void
}
