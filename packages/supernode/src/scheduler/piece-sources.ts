/**
 * Which sources to offer for a piece, best first. Pure policy: no I/O, no clocks of its own.
 *
 * Peers that hold the piece come first, ordered so that load spreads: the peer handed out least
 * often, then least recently, leads. The seed (the supernode) always comes last: it is the one
 * source every peer can reach, so it is kept for pieces no peer holds yet and for fallbacks; putting
 * it first would make the supernode's uplink the fleet's bottleneck (the problem P2P exists to solve).
 */

export interface SourceCandidate {
  peerId: string
  addrs: readonly string[]
}

export interface RankedSource {
  peerId: string
  addrs: string[]
  seed: boolean
}

/** How often and when each peer was last offered as the first source. */
export interface HandoutStats {
  count: number
  lastAt: number
}

/** Upper bound on sources listed per piece, keeping replies for 500-piece tasks small. */
export const MAX_SOURCES_PER_PIECE = 8

export function rankPieceSources (input: {
  holders: readonly SourceCandidate[]
  requester?: string | undefined
  seed?: SourceCandidate | undefined
  stats: ReadonlyMap<string, HandoutStats>
  limit?: number
}): RankedSource[] {
  const limit = input.limit ?? MAX_SOURCES_PER_PIECE
  const none: HandoutStats = { count: 0, lastAt: 0 }
  const peers = input.holders
    .filter(h => h.peerId !== input.requester && h.peerId !== input.seed?.peerId)
    .map(h => ({ h, s: input.stats.get(h.peerId) ?? none }))
    .sort((a, b) => a.s.count - b.s.count || a.s.lastAt - b.s.lastAt || (a.h.peerId < b.h.peerId ? -1 : 1))
    .slice(0, input.seed === undefined ? limit : limit - 1)
    .map(({ h }) => ({ peerId: h.peerId, addrs: [...h.addrs], seed: false }))
  if (input.seed !== undefined) peers.push({ peerId: input.seed.peerId, addrs: [...input.seed.addrs], seed: true })
  return peers
}

/** Mutable handout ledger: the scheduler's memory of whom it offered, feeding `rankPieceSources`. */
export class HandoutLedger {
  readonly #stats = new Map<string, HandoutStats>()

  get stats (): ReadonlyMap<string, HandoutStats> { return this.#stats }

  record (peerId: string, at: number): void {
    const s = this.#stats.get(peerId)
    if (s === undefined) this.#stats.set(peerId, { count: 1, lastAt: at })
    else { s.count++; s.lastAt = at }
  }

  forget (peerId: string): void {
    this.#stats.delete(peerId)
  }
}
