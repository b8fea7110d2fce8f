import type { PieceSource } from '@damselfly/proto'

/**
 * Uploads a peer is trusted with at once; mirrors the supernode's MAX_UPLOADS_PER_PEER. Used only to
 * judge whether our own fetches alone saturate a peer.
 */
export const PEER_UPLOAD_CAP = 4

/**
 * The sources to try for a piece, never ourselves, in the supernode's order: it ranks working holders
 * by load and puts the seed first only when no peer holding the piece could serve at reply time. A
 * reply is a snapshot, and the load that made the seed first is often our own earlier fetches, which
 * have finished since (the next reply comes only after our held-piece report). So when the seed is
 * first, the first listed peer that our own fetches do not saturate (`ownLoad` below the cap) and that
 * has not failed us (`failed`) goes before it; the seed stays the fallback. This keeps pulls on peers
 * and off the seed, which is what P2P is for.
 */
export function rankSources (sources: readonly PieceSource[], selfPeerId: string, ownLoad?: (peerId: string) => number, failed?: ReadonlySet<string>): PieceSource[] {
  const list = sources.filter(s => s.peerId !== selfPeerId)
  const first = list[0]
  if (first === undefined || !first.seed || ownLoad === undefined) return list
  const k = list.findIndex(s => !s.seed && failed?.has(s.peerId) !== true && ownLoad(s.peerId) < PEER_UPLOAD_CAP)
  if (k <= 0) return list
  return [list[k] as PieceSource, ...list.slice(0, k), ...list.slice(k + 1)]
}
