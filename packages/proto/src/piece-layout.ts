/**
 * How a blob is cut into pieces — the one place this rule lives.
 *
 * Pieces are 4 MiB. A blob that would need more than 500 pieces gets larger pieces: the piece size
 * doubles (8, 16, 32 MiB) until the blob fits in 500, and stops at 64 MiB, so blobs above 32,000 MiB
 * have more than 500 pieces of 64 MiB. Why: 4 MiB is large enough that per-piece costs (a stream
 * negotiation, a supernode report, a SHA-256 finalisation) stay below 1% of transfer time at 1 Gbit/s,
 * and small enough that a fresh peer can serve its first piece to others within ~40 ms of a 1 Gbit/s
 * link. The 500-piece ceiling bounds the supernode's per-task state and the size of availability
 * replies; the 64 MiB cap bounds per-piece memory and the work lost when a piece fails verification.
 * Every piece is full except the last, which holds the remainder (a 0-byte blob has 0 pieces).
 */
export const BASE_PIECE_SIZE = 4 * 1024 * 1024
export const MAX_PIECE_SIZE = 64 * 1024 * 1024
export const TARGET_MAX_PIECES = 500

/** The piece size for a blob of `size` bytes. */
export function pieceSizeFor (size: number): number {
  if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`invalid blob size ${size}`)
  let pieceSize = BASE_PIECE_SIZE
  while (pieceSize < MAX_PIECE_SIZE && Math.ceil(size / pieceSize) > TARGET_MAX_PIECES) pieceSize *= 2
  return pieceSize
}

/** The layout of one blob: its size, piece size and piece count. */
export interface PieceLayout {
  readonly size: number
  readonly pieceSize: number
  readonly pieceCount: number
}

export function layoutFor (size: number): PieceLayout {
  const pieceSize = pieceSizeFor(size)
  return { size, pieceSize, pieceCount: Math.ceil(size / pieceSize) }
}

/** Byte range `[start, end)` of piece `index`. */
export function pieceRange (layout: PieceLayout, index: number): { start: number, end: number, length: number } {
  if (!Number.isInteger(index) || index < 0 || index >= layout.pieceCount) {
    throw new RangeError(`piece ${index} out of range 0..${layout.pieceCount - 1}`)
  }
  const start = index * layout.pieceSize
  const end = Math.min(start + layout.pieceSize, layout.size)
  return { start, end, length: end - start }
}

/** The index of the piece holding byte `offset`. */
export function pieceIndexAt (layout: PieceLayout, offset: number): number {
  return Math.floor(offset / layout.pieceSize)
}
