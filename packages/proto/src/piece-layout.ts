/**
 * How a blob is cut into pieces — the one place this rule lives — and how a piece counts against the
 * transfer budgets that are set in bytes.
 *
 * Pieces are 4 MiB. A blob that would need more than 64 pieces gets larger pieces: the piece size
 * doubles (8, 16, 32 MiB) until the blob fits in 64, and stops at 64 MiB, so blobs above 4 GiB have
 * more than 64 pieces of 64 MiB. A 1 GiB layer is 64 pieces of 16 MiB.
 *
 * Why 64 pieces: the supernode plans every piece a peer fetches, so planning work for a pull wave is
 * peers × pieces. `npm run simulate` (10,000 peers, 1 GiB, 1 Gbit/s peers) measured ~5 CPU-minutes of
 * planning for a 10.9-second wave at 256 pieces of 4 MiB — one supernode could not keep up with the
 * wave it schedules; at 64 pieces of 16 MiB it is a quarter of that and the wave finishes closer to the
 * physical bound (1.193× instead of 1.269×; the README's simulator section has the figures). 64 is
 * also the dfclient's read-ahead window, so up to 4 GiB every piece of a blob is in every reader's
 * window and rarest-first can pick among all of them. Dragonfly 1 likewise grew pieces with the file
 * (4 MiB + 1 MiB per 100 MiB past 200 MiB, 12 MiB at 1 GiB, ANCHORS §2 row 14). Why not larger: what a
 * piece costs in time is kept constant by the byte budgets below, but a piece is relayed only once it
 * is whole and verified, so past 64 MiB the first copies of a fresh blob would spread too slowly; the
 * cap also bounds per-piece memory and the work lost when a piece fails verification.
 * Every piece is full except the last, which holds the remainder (a 0-byte blob has 0 pieces).
 *
 * **Budgets in bytes.** How many pieces a download fetches at once and how many uploads a source is
 * trusted with were tuned at 4 MiB (4 fetches, 4 uploads per peer, 32 for the seed), and what was tuned
 * is bytes on the wire: every piece counts `pieceUnits` of them, so a download of 16 MiB pieces fetches
 * one at a time and one upload of it fills a peer. Each stream then moves as fast as four 4 MiB ones
 * did, every time limit tuned for 4 MiB transfers still holds, and a piece relayed sooner is what a
 * swarm needs (simulated, 1,000 peers: 16 MiB pieces one at a time per download and per uploader 1.141×
 * the bound, two at a time 1.269×).
 */
export const BASE_PIECE_SIZE = 4 * 1024 * 1024
export const MAX_PIECE_SIZE = 64 * 1024 * 1024
export const TARGET_MAX_PIECES = 64

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

/** How many base-size (4 MiB) budget units one transfer of a piece of `pieceSize` bytes counts. */
export function pieceUnits (pieceSize: number): number {
  return Math.max(1, Math.ceil(pieceSize / BASE_PIECE_SIZE))
}

/**
 * How many transfers of `pieceSize`-byte pieces fit a budget of `units` base-size units — never
 * fewer than one, so a download or an upload always makes progress.
 */
export function piecesWithin (units: number, pieceSize: number): number {
  return Math.max(1, Math.floor(units / pieceUnits(pieceSize)))
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
