import type { PieceSource } from '@damselfly/proto'

/**
 * The ranking rule, as pure functions over a snapshot of load. `Swarm` builds the snapshot from its
 * state and applies the result; keeping the rule here keeps it readable in one place.
 *
 * **Pieces: rarest first.** The pieces a requester lacks come first, fewest eligible holders first;
 * the pieces it already holds follow in index order (listed so a peer whose cache lost a piece can
 * still fetch it). Rarest first spreads the rare pieces before their few holders leave or saturate
 * (the Dragonfly 1 supernode and Kraken both do this). Equally rare pieces inside the requester's
 * window (its `ASSIGNMENT_WINDOW` lowest-indexed lacking pieces, where the dfclient fetches) are
 * ordered by a hash of (requester, index), so concurrent requesters of a fresh blob, which only the
 * seed holds, start on different pieces and soon have something to give each other; the window
 * keeps that shuffle close to the in-order streaming cursor. Outside the window ties go by index.
 * The dfclient still reads in order and starts fetches inside its window in the reply's order.
 *
 * **Sources: least-loaded working holder first.** Eligible holders (alive, not quarantined, not the
 * requester) are compared by: recent failures (fewer first: a retry on a failing source costs a
 * timeout, far more than queueing behind a working one), in-flight uploads (fewer first), recent
 * upload rate in bytes/s (lower first), then least recently assigned (so equal peers take turns
 * even when nobody reports rates), then peer id (determinism). A holder is *usable* when it has
 * fewer in-flight uploads than its cap and fewer recent failures than the demotion threshold;
 * unusable holders are listed after every usable one.
 *
 * **The seed: last resort, and once per piece (super-seeding).** With a usable holder the seed is
 * listed last, as the fallback a dfclient reaches only after every peer listed before it failed (a
 * holder can die within its TTL; without the seed the pull would fall back to the upstream). With
 * no usable holder, what a known requester is told depends on its `SeedGate`:
 * - the holders as usual when the requester already has a live assignment to one of them (it is its
 *   own upload that makes the holder look busy);
 * - the seed first when the requester already fetches the piece from the seed (its claim), or has
 *   waited `SOURCE_WAIT_LIMIT_MS` for a source of it (never worse than no P2P; beyond the seed's
 *   cap too);
 * - else the seed first when fewer than `SEED_FANOUT_PER_PIECE` other requesters fetch the piece
 *   from the seed and no working holder is merely busy (a busy holder frees a slot soon; a second
 *   seed copy would be the duplicate P2P exists to avoid). A seed at its cap is then listed last;
 * - else no source yet (an empty list): the requester fetches other pieces of its window and is
 *   woken when the piece's holders change, a claim fails, or its wait runs out.
 * Anonymous requesters (no peer id, no assignments) have no gate: the seed is first whenever no
 * usable holder exists and it is under its cap.
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

/**
 * Whether a source can take an upload for this requester. `own` is how many of the source's uploads
 * in flight the requester itself is fetching: they count for spreading its pieces over holders but
 * never make a holder unusable for that requester (a lone peer pulling a blob one other peer holds
 * would otherwise stall behind its own in-flight fetches).
 */
export function isUsable (s: SourceLoad, failuresBeforeDemotion: number, own = 0): boolean {
  return s.inFlight - own < s.cap && s.failures < failuresBeforeDemotion
}

export function compareLoad (a: SourceLoad, b: SourceLoad): number {
  return a.failures - b.failures ||
    a.inFlight - b.inFlight ||
    a.rate - b.rate ||
    a.lastAssignedAt - b.lastAssignedAt ||
    (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0)
}

/** What decides whether a known requester may be sent to the seed for a piece no usable peer holds. */
export interface SeedGate {
  /** Other requesters with a live claim on a seed upload of this piece. */
  othersOnSeed: number
  /** `SEED_FANOUT_PER_PIECE`. */
  fanout: number
  /** The requester itself has a live claim (it is fetching the piece from the seed). */
  ownClaim: boolean
  /** The requester has waited `SOURCE_WAIT_LIMIT_MS` for a source of this piece. */
  waitedOut: boolean
  /** The requester already has a live assignment of this piece to one of `holders` (its own load). */
  assignedToHolder: boolean
}

/**
 * Ranked sources for one piece: see the module comment. `holders` must already exclude the
 * requester, quarantined and dead peers, and the seed. The seed appears at most once (always, unless
 * the gate says "no source yet", which returns an empty list), and at most `limit` sources are
 * returned.
 */
export function rankSources (input: {
  holders: readonly SourceLoad[]
  seed: SourceLoad
  failuresBeforeDemotion: number
  limit: number
  /** Undefined for an anonymous requester. */
  gate?: SeedGate | undefined
  /** The requester's own uploads in flight from one of `holders` (see `isUsable`); none when absent. */
  ownOf?: ((holder: SourceLoad) => number) | undefined
}): PieceSource[] {
  const usable: SourceLoad[] = []
  const rest: SourceLoad[] = []
  const ownOf = input.ownOf
  const f = input.failuresBeforeDemotion
  for (const h of input.holders) (isUsable(h, f, ownOf === undefined ? 0 : ownOf(h)) ? usable : rest).push(h)
  const seedUnderCap = input.seed.inFlight < input.seed.cap
  const gate = input.gate
  // Decide first, build after: most pieces a herd asks about at once end in "no source yet".
  let seedFirst: boolean
  if (usable.length > 0 || gate?.assignedToHolder === true) seedFirst = false
  else if (gate === undefined) seedFirst = seedUnderCap
  else if (gate.ownClaim || gate.waitedOut) seedFirst = true
  else if (!rest.some(h => h.failures < f) && gate.othersOnSeed < gate.fanout) seedFirst = seedUnderCap
  else return []
  sortLoads(usable)
  sortLoads(rest)
  const max = Math.max(0, input.limit - 1)
  const out: PieceSource[] = []
  const seed = asSource(input.seed, true)
  if (seedFirst) out.push(seed)
  for (let i = 0; i < usable.length && out.length < max + (seedFirst ? 1 : 0); i++) out.push(asSource(usable[i] as SourceLoad, false))
  for (let i = 0; i < rest.length && out.length < max + (seedFirst ? 1 : 0); i++) out.push(asSource(rest[i] as SourceLoad, false))
  if (!seedFirst) out.push(seed)
  return out
}

/** One piece as the requester sees it: how many eligible sources hold it, and whether it holds it. */
export interface PieceDemand {
  index: number
  holders: number
  held: boolean
  /** Tie-break among equally rare lacking pieces (lower first); undefined sorts after any number. */
  spread?: number | undefined
}

/** Lacking pieces rarest first (ties by `spread`, then index), then held pieces by index. */
export function orderPieces<D extends PieceDemand> (pieces: readonly D[]): D[] {
  return [...pieces].sort((a, b) =>
    Number(a.held) - Number(b.held) ||
    (a.held ? 0 : a.holders - b.holders || cmp(a.spread ?? Infinity, b.spread ?? Infinity)) ||
    a.index - b.index)
}

/**
 * The per-requester tie-break: FNV-1a (32 bit) of "requester:index". Deterministic (a re-poll sees
 * the same order, so live assignments are kept) and different for every requester.
 */
export function spreadRank (requester: string, index: number): number {
  return spreadRanker(requester)(index)
}

/** `spreadRank` for one requester and many pieces: the requester's part of the hash is computed once. */
export function spreadRanker (requester: string): (index: number) => number {
  let prefix = 0x811c9dc5
  const p = `${requester}:`
  for (let i = 0; i < p.length; i++) {
    prefix ^= p.charCodeAt(i)
    prefix = Math.imul(prefix, 0x01000193) >>> 0
  }
  return index => {
    let h = prefix
    const s = String(index)
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i)
      h = Math.imul(h, 0x01000193) >>> 0
    }
    return h
  }
}

/**
 * `loads.sort(compareLoad)`, in place. A piece ranks a dozen holders at most and a poll ranks several
 * pieces: for so few, an insertion sort costs less than the built-in sort's set-up. Both are stable,
 * so they give the same order.
 */
function sortLoads (loads: SourceLoad[]): void {
  for (let i = 1; i < loads.length; i++) {
    const l = loads[i] as SourceLoad
    let j = i - 1
    for (; j >= 0 && compareLoad(loads[j] as SourceLoad, l) > 0; j--) loads[j + 1] = loads[j] as SourceLoad
    loads[j + 1] = l
  }
}

function cmp (a: number, b: number): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** The addresses are shared, not copied: a reply is serialised, never changed, by its consumers. */
function asSource (s: SourceLoad, seed: boolean): PieceSource {
  return { peerId: s.peerId, addrs: s.addrs as string[], seed }
}
