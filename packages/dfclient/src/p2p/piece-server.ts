import type { Libp2p } from '@libp2p/interface'
import type { Logger } from 'pino'
import { PIECE_PROTOCOL, dfError, isDfError, pieceRange, servePiece } from '@damselfly/proto'
import type { PieceCache } from '../storage/piece-cache.js'
import type { PeerAllowList } from './allow-list.js'
import { throttled, type TokenBucket, type UploadGate } from './upload-limiter.js'

/** Deadline for serving one piece (a stalled reader must not pin a file handle forever). */
const SERVE_TIMEOUT_MS = 120_000

export interface PieceServerOptions {
  logger: Logger
  onBytes: (n: number) => void
  maxInboundStreams?: number
  /** `--upload-concurrency`: pieces served at once; others queue, then are refused as unavailable. */
  gate?: UploadGate
  /** `--upload-rate`: bytes/s over all uploads; absent = unlimited. */
  rate?: TokenBucket
  /**
   * Dialers that may be served: peers the supernode registered (see allow-list.ts). Others are
   * refused with DF_ERR_PEER_NOT_ALLOWED. Absent = everyone (tests).
   */
  allowList?: Pick<PeerAllowList, 'allows'>
}

/**
 * Serves pieces to other peers over `/damselfly/piece/1.0.0`: held pieces and staged ones (verified
 * and written, not yet flushed — the requester verifies again, and durability only matters for this
 * node's own restart). Anything else answers DF_ERR_PIECE_UNAVAILABLE, and so does a request the
 * upload gate refuses (queue full or waited too long), so the requester tries another source.
 */
export async function registerPieceServer (node: Libp2p, cache: PieceCache, options: PieceServerOptions): Promise<void> {
  const { gate, rate } = options
  await node.handle(PIECE_PROTOCOL, async (stream, connection) => {
    const signal = AbortSignal.timeout(SERVE_TIMEOUT_MS)
    let release: (() => void) | undefined
    let refused = false
    try {
      const remote = connection.remotePeer.toString()
      const result = await servePiece(stream, async (request, openSignal) => {
        // Before anything else: a stranger learns nothing, not even whether we hold the piece.
        if (options.allowList !== undefined && !await options.allowList.allows(remote)) {
          throw dfError('DF_ERR_PEER_NOT_ALLOWED', `peer ${remote} is not registered with the supernode`)
        }
        const held = (): boolean => cache.hasPieceBytes(request.taskId, request.index)
        // Not held: answer at once, without taking or waiting for an upload slot.
        if (!held()) return undefined
        if (gate !== undefined) {
          release = await gate.acquire(openSignal)
          if (release === undefined) { refused = true; return undefined }
          if (!held()) return undefined // evicted while queued
        }
        // Streamed from the file in 1 MiB reads: a served piece never sits whole in memory.
        const layout = cache.layoutOf(request.taskId)
        if (layout === undefined || request.index >= layout.pieceCount) return undefined
        const r = pieceRange(layout, request.index)
        const body = cache.readPieceBytes(request.taskId, request.index)
        return { size: r.length, body: rate === undefined ? body : throttled(body, rate, openSignal) }
      }, { signal, onBytes: options.onBytes })
      if (refused) {
        options.logger.debug({ peerId: remote, taskId: result.request?.taskId, pieceIndex: result.request?.index }, 'upload slots busy: piece refused')
      }
      if (isDfError(result.error) && result.error.code === 'DF_ERR_PEER_NOT_ALLOWED') {
        options.logger.warn({ peerId: remote, addr: connection.remoteAddr.toString(), taskId: result.request?.taskId, pieceIndex: result.request?.index }, 'piece refused: the dialer is not a registered peer')
      } else if (result.error !== undefined) {
        options.logger.debug({ peerId: remote, taskId: result.request?.taskId, pieceIndex: result.request?.index, err: result.error.message }, 'serving piece failed')
      }
    } finally {
      release?.()
    }
  }, { maxInboundStreams: options.maxInboundStreams ?? 256 })
}
