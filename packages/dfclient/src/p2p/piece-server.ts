import type { Libp2p } from '@libp2p/interface'
import type { Logger } from 'pino'
import { PIECE_PROTOCOL, servePiece } from '@damselfly/proto'
import type { PieceCache } from '../storage/piece-cache.js'

/** Deadline for serving one piece (a stalled reader must not pin a file handle forever). */
const SERVE_TIMEOUT_MS = 120_000

/**
 * Serves held pieces to other peers over `/damselfly/piece/1.0.0`. Only pieces whose bytes and
 * metadata are durable in the cache are offered; everything else answers DF_ERR_PIECE_UNAVAILABLE.
 */
export async function registerPieceServer (node: Libp2p, cache: PieceCache, options: { logger: Logger, onBytes: (n: number) => void, maxInboundStreams?: number }): Promise<void> {
  await node.handle(PIECE_PROTOCOL, async (stream, connection) => {
    const signal = AbortSignal.timeout(SERVE_TIMEOUT_MS)
    const result = await servePiece(stream, async (request) => {
      const bytes = await cache.readPiece(request.taskId, request.index)
      if (bytes === undefined) return undefined
      return { size: bytes.byteLength, body: (async function * () { yield bytes })() }
    }, { signal, onBytes: options.onBytes })
    if (result.error !== undefined) {
      options.logger.debug({ peerId: connection.remotePeer.toString(), taskId: result.request?.taskId, pieceIndex: result.request?.index, err: result.error.message }, 'serving piece failed')
    }
  }, { maxInboundStreams: options.maxInboundStreams ?? 256 })
}
