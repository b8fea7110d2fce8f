import type { PieceAvailability, PieceSource } from '@damselfly/proto'
import type { PeerRegistry } from '../peers/peer-registry.js'
import type { LiveTask } from '../tasks/task-board.js'
import { rankPieceSources, type HandoutLedger, type SourceCandidate } from './piece-sources.js'

/**
 * The availability list for one reply: every piece whose digest the seed has published, with ranked
 * sources. The first source of each piece is recorded in the ledger before ranking the next piece, so
 * one reply already spreads its pieces over the holders instead of sending them all to one peer.
 */
export function pieceAvailability (input: {
  task: LiveTask
  peers: PeerRegistry
  ledger: HandoutLedger
  seed: SourceCandidate
  requester?: string | undefined
  now: number
}): PieceAvailability[] {
  const { task } = input
  if (task.record.state === 'failed') return []
  const out: PieceAvailability[] = []
  const indices = [...task.pieces.keys()].sort((a, b) => a - b)
  for (const index of indices) {
    const sources: PieceSource[] = rankPieceSources({
      holders: input.peers.holders(task.record.taskId, index),
      requester: input.requester,
      seed: input.seed,
      stats: input.ledger.stats
    })
    const first = sources[0]
    if (first !== undefined && !first.seed) input.ledger.record(first.peerId, input.now)
    out.push({ index, digest: task.pieces.get(index) as string, sources })
  }
  return out
}
