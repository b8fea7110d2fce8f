import type { PieceSource } from '@damselfly/proto'

/**
 * The ranking rule, as pure functions over a snapshot of load. `Swarm` builds the snapshot from its
 * state and applies the result; keeping the rule here keeps it readable in one place.
 *
 * **Pieces: rarest first.** The pieces a requester lacks come first, fewest eligible holders first,
 * ties by index; the pieces it already holds follow in index order (listed so a peer whose cache lost
 * a piece can still fetch it). Rarest first spreads the rare pieces before their few holders leave
 * or saturate (the Dragonfly 1 supernode and Kraken both do this). It does not fight in-order
 * streaming: the dfclient still reads in order and fetches only inside a window ahead of its cursor;
 * within that window it should start fetches in the order the reply lists pieces, which puts the
 * rare ones first. Ties by index keep the reply's order close to the stream's order when every piece
 * is equally rare (the common case of a fresh blob that only the seed holds).
 *
 * **Sources: least-loaded working holder first.** Eligible holders (alive, not quarantined, not the
 * requester) are compared by: recent failures (fewer first: a retry on a failing source costs a
 * timeout, far more than queueing behind a working one), in-flight uploads (fewer first), recent
 * upload rate in bytes/s (lower first), then least recently assigned (so equal peers take turns
 * even when nobody reports rates), then peer id (determinism). A holder is *usable* when it has
 * fewer in-flight uploads than its cap and fewer recent failures than the demotion threshold;
 * unusable holders are listed after every usable one.
 *
 * **The seed: last resort.** The seed (the supernode) is first only when no usable peer holds the
 * piece and the seed itself is under its (higher) cap. Otherwise it is listed last, as the fallback
 * a dfclient reaches only after every peer listed before it failed: a holder can die within its TTL,
 * and without the seed in the list such a pull would fall back to the upstream registry instead.
 */

/** One possible source and its load at the moment of ranking. */
export interface SourceLoad {
  peerId: string
  addrs: readonly string[]
  /** Uploads handed out and not yet reported or expired. */
  inFlight: number
  /** In-flight uploads at which the source counts as saturated. */
  cap: number
  /** Non-integrity transfer failures inside the rate window. */
  failures: number
  /** Bytes/s uploaded over the rate window. */
  rate: number
  /** Clock of the last assignment to this source (0 if never). */
  lastAssignedAt: number
}

export function isUsable (s: SourceLoad, failuresBeforeDemotion: number): boolean {
  return s.inFlight < s.cap && s.failures < failuresBeforeDemotion
}

export function compareLoad (a: SourceLoad, b: SourceLoad): number {
  return a.failures - b.failures ||
    a.inFlight - b.inFlight ||
    a.rate - b.rate ||
    a.lastAssignedAt - b.lastAssignedAt ||
    (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
}

/**
 * Ranked sources for one piece: see the module comment. `holders` must already exclude the
 * requester, quarantined and dead peers, and the seed. The seed appears exactly once, and at most
 * `limit` sources are returned.
 */
export function rankSources (input: {
  holders: readonly SourceLoad[]
  seed: SourceLoad
  failuresBeforeDemotion: number
  limit: number
}): PieceSource[] {
  const usable: SourceLoad[] = []
  const rest: SourceLoad[] = []
  for (const h of input.holders) (isUsable(h, input.failuresBeforeDemotion) ? usable : rest).push(h)
  usable.sort(compareLoad)
  rest.sort(compareLoad)
  const peers = [...usable, ...rest].slice(0, Math.max(0, input.limit - 1)).map(s => asSource(s, false))
  const seed = asSource(input.seed, true)
  const seedFirst = usable.length === 0 && input.seed.inFlight < input.seed.cap
  return seedFirst ? [seed, ...peers] : [...peers, seed]
}

/** One piece as the requester sees it: how many eligible sources hold it, and whether it holds it. */
export interface PieceDemand {
  index: number
  holders: number
  held: boolean
}

/** Lacking pieces rarest first (ties by index), then held pieces by index. */
export function orderPieces (pieces: readonly PieceDemand[]): PieceDemand[] {
  return [...pieces].sort((a, b) =>
    Number(a.held) - Number(b.held) ||
    (a.held ? 0 : a.holders - b.holders) ||
    a.index - b.index)
}

function asSource (s: SourceLoad, seed: boolean): PieceSource {
  return { peerId: s.peerId, addrs: [...s.addrs], seed }
}
