/**
 * A task's piece map folded into at most `maxCells` cells, so a 10 GiB blob (thousands of pieces)
 * costs the same few kilobytes per poll as a small one. Cell `c` covers a contiguous run of pieces;
 * up to `maxCells` pieces, one cell is one piece.
 *
 * Each cell is `[published, pieces, minHolders]`: how many of its pieces the seed has published, how
 * many pieces it covers, and the fewest live holders any of its pieces has. The minimum, not the mean:
 * the rarest piece is what a new requester waits for, and what the map should make visible.
 */
export type PieceCell = [published: number, pieces: number, minHolders: number]

export interface PieceMap {
  /** Pieces per cell (the last cell may cover fewer). */
  piecesPerCell: number
  cells: PieceCell[]
}

/** The default cap: enough resolution for a map a few hundred pixels wide. */
export const MAX_PIECE_CELLS = 256

export function buildPieceMap (pieceCount: number, isPublished: (index: number) => boolean, holderCount: (index: number) => number, maxCells = MAX_PIECE_CELLS): PieceMap {
  const cellCount = Math.min(pieceCount, maxCells)
  const cells: PieceCell[] = []
  for (let c = 0; c < cellCount; c++) {
    const start = Math.floor(c * pieceCount / cellCount)
    const end = Math.floor((c + 1) * pieceCount / cellCount)
    let published = 0
    let minHolders = Infinity
    for (let i = start; i < end; i++) {
      if (isPublished(i)) published++
      minHolders = Math.min(minHolders, holderCount(i))
    }
    cells.push([published, end - start, minHolders === Infinity ? 0 : minHolders])
  }
  return { piecesPerCell: cellCount === 0 ? 0 : Math.ceil(pieceCount / cellCount), cells }
}
