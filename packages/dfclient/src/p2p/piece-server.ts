import type { Libp2p } from '@libp2p/interface'
import type { Logger } from 'pino'
import { PIECE_PROTOCOL, pieceRange, servePiece } from '@damselfly/proto'
import type { PieceCache } from '../storage/piece-cache.js'

/** Deadline for serving one piece (a stalled reader must not pin a file handle forever). */
const SERVE_TIMEOUT_MS = 120_000

/**
 * Serves pieces to other peers over `/damselfly/piece/1.0.0`: held pieces and staged ones (verified
 * and written, not yet flushed — the requester verifies again, and durability only matters for this
 * node's own restart). Anything else answers DF_ERR_PIECE_UNAVAILABLE.
 */
export async function registerPieceServer (node: Libp2p, cache: PieceCache, options: { logger: Logger, onBytes: (n: number) => void, maxInboundStreams?: number }): Promise<void> {
  await node.handle(PIECE_PROTOCOL, async (stream, connection) => {
    const signal = AbortSignal.timeout(SERVE_TIMEOUT_MS)
    const result = await servePiece(stream, async (request) => {
      // Streamed from the file in 1 MiB reads: a served piece never sits whole in memory.
      const layout = cache.hasPieceBytes(request.taskId, request.index) ? cache.layoutOf(request.taskId) : undefined
      if (layout === undefined || request.index >= layout.pieceCount) return undefined
      const r = pieceRange(layout, request.index)
      return { size: r.length, body: cache.readPieceBytes(request.taskId, request.index) }
    }, { signal, onBytes: options.onBytes })
    if (result.error !== undefined) {
      options.logger.debug({ peerId: connection.remotePeer.toString(), taskId: result.request?.taskId, pieceIndex: result.request?.index, err: result.error.message }, 'serving piece failed')
    }
  }, { maxInboundStreams: options.maxInboundStreams ?? 256 })
}
