import type { PieceSource } from '@damselfly/proto'
import type { Holdings } from './holdings.js'
import type { PeerRecord, Standing } from './peer-state.js'
import { orderPieces, rankSources, spreadRank, type PieceDemand, type SeedGate, type SourceLoad } from './rank-sources.js'
import type { SeedClaims, SourceWaits } from './seed-fanout.js'
import type { Options, PiecePlan, SourceAddress } from './swarm-types.js'
import type { UploadLedger } from './upload-ledger.js'

/** The parts of the swarm's state that planning a piece request reads and records into. */
export interface PlanState {
  readonly o: Options
  readonly holdings: Holdings
  readonly uploads: UploadLedger
  readonly claims: SeedClaims
  readonly waits: SourceWaits
  readonly standing: Standing
  /** taskId → peerId → end of that peer's quarantine for the task. */
  readonly taskQuarantine: ReadonlyMap<string, ReadonlyMap<string, number>>
  /** The supernode's own seed address. */
  seed: () => SourceAddress
  /** The peer if it is announced and not silent for longer than the TTL. */
  peer: (peerId: string) => PeerRecord | undefined
  sourceWaitLimitMs: () => number
  seedClaimTtlMs: () => number
}

/**
 * A peer (or an anonymous caller) asks for the task's pieces: every published piece with ranked
 * sources, lacking pieces rarest first. For a live requester, each of its next `assignmentWindow`
 * lacking pieces is assigned to its first source (`pieceAssigned`), and later pieces in the same
 * reply see that load.
 *
 * The body of the `piecesRequested` event for a known task that has not failed, after expired
 * assignments were dropped.
 */
export function planPieces (s: PlanState, taskId: string, published: ReadonlySet<number>, requester: string | undefined, now: number, from?: number): PiecePlan[] {
  /** The requester when it is a live peer: only then are assignments, claims and waits recorded. */
  const live = requester !== undefined && s.peer(requester) !== undefined ? requester : undefined
  const assigning = live !== undefined
  const seed = s.seed()
  const loads = new Map<string, SourceLoad | null>()
  const loadOf = (peerId: string): SourceLoad | null => {
    let l = loads.get(peerId)
    if (l === undefined) loads.set(peerId, l = eligibleLoad(s, taskId, peerId, requester, seed.peerId, now))
    return l
  }
  const seedLoad = s.uploads.load(seed.peerId, seed.addrs, s.o.maxUploadsSeed, now)

  const demands: PieceDemand[] = []
  const eligible = new Map<number, SourceLoad[]>()
  for (const index of [...published].sort((a, b) => a - b)) {
    const set = s.holdings.holders(taskId, index)
    const loadsHere: SourceLoad[] = []
    for (const id of set) {
      const l = loadOf(id)
      if (l !== null) loadsHere.push(l)
    }
    eligible.set(index, loadsHere)
    demands.push({ index, holders: loadsHere.length, held: requester !== undefined && set.has(requester) })
  }
  // The requester's window: where it fetches. With `from` (the piece it reads next) that is its
  // lacking pieces in [from, from + window); else its lowest-indexed lacking pieces (it streams in
  // order). Assigning outside the pieces it fetches would hand it pieces it never starts. Ties inside
  // the window are broken per requester, so concurrent requesters start on different pieces.
  const lacking = demands.filter(d => !d.held && (from === undefined || (d.index >= from && d.index < from + s.o.assignmentWindow)))
  const window = new Set(lacking.slice(0, assigning ? s.o.assignmentWindow : 0).map(d => d.index))
  if (requester !== undefined) for (const d of demands) if (window.has(d.index)) d.spread = spreadRank(requester, d.index)

  const ordered = orderPieces(demands)
  // The pieces the requester fetches right now (live assignments) take its slots first; the rest of
  // its slots go to window pieces in reply order, which is the order the dfclient starts them in.
  const fetching = (index: number): boolean => live !== undefined && (s.uploads.get(taskId, index, live)?.expiresAt ?? 0) > now
  let slots = live === undefined ? 0 : s.o.activePieces - ordered.filter(d => window.has(d.index) && fetching(d.index)).length
  const plans: PiecePlan[] = []
  const waiting: number[] = []
  for (const d of ordered) {
    const holders = eligible.get(d.index) ?? []
    const rank = (gate: SeedGate | undefined): PieceSource[] =>
      rankSources({ holders, seed: seedLoad, failuresBeforeDemotion: s.o.failuresBeforeDemotion, limit: s.o.maxSourcesPerPiece, gate })
    if (live === undefined || !window.has(d.index)) {
      plans.push({ index: d.index, sources: rank(live !== undefined && !d.held ? seedGate(s, taskId, d.index, live, false, holders, now) : undefined) })
      continue
    }
    const active = fetching(d.index) || slots > 0
    if (!active) {
      // Beyond the requester's slots: its usable holders if any, but no seed claim and no wait (it
      // is not trying to fetch this piece yet, so it must neither hold the seed's one copy nor be
      // counted as starved of a source, which would hand it the seed early).
      plans.push({ index: d.index, sources: rank({ ...seedGate(s, taskId, d.index, live, false, holders, now), fanout: 0 }) })
      continue
    }
    let sources = rank(seedGate(s, taskId, d.index, live, true, holders, now))
    if (sources.length === 0) waiting.push(d.index)
    else if (!fetching(d.index)) slots--
    sources = assign(s, taskId, d.index, live, sources, now, id => id === seed.peerId ? seedLoad : loadOf(id))
    plans.push({ index: d.index, sources })
  }
  if (live !== undefined) s.waits.update(taskId, live, waiting, now)
  return plans
}

/** The load of `peerId` as a source for this task and requester, or null when it may not serve. */
function eligibleLoad (s: PlanState, taskId: string, peerId: string, requester: string | undefined, seedId: string, now: number): SourceLoad | null {
  if (peerId === requester || peerId === seedId) return null
  const p = s.peer(peerId)
  if (p === undefined) return null
  if (s.standing.quarantinedUntil(peerId, now) !== undefined) return null
  const until = s.taskQuarantine.get(taskId)?.get(peerId)
  if (until !== undefined && until > now) return null
  const load = s.uploads.load(peerId, p.addrs, s.o.maxUploadsPerPeer, now)
  if (requester !== undefined) load.own = s.uploads.inFlightTo(peerId, requester, now)
  return load
}

/** The seed's fan-out gate for a live requester and a piece it lacks (see `rank-sources.ts`). */
function seedGate (s: PlanState, taskId: string, index: number, requester: string, inWindow: boolean, holders: readonly SourceLoad[], now: number): SeedGate {
  const since = inWindow ? s.waits.since(taskId, requester, index) : undefined
  const assigned = s.uploads.get(taskId, index, requester)
  return {
    assignedToHolder: assigned !== undefined && assigned.expiresAt > now && holders.some(h => h.peerId === assigned.source),
    othersOnSeed: s.claims.others(taskId, index, requester, now),
    fanout: s.o.seedFanoutPerPiece,
    ownClaim: s.claims.has(taskId, index, requester, now),
    waitedOut: since !== undefined && now - since >= s.sourceWaitLimitMs()
  }
}

/**
 * Records (or keeps) the requester's assignment for one piece and returns the sources with the
 * assigned one first. `load` gives the reply's load snapshot, updated so later pieces see it.
 */
function assign (s: PlanState, taskId: string, index: number, requester: string, sources: PieceSource[], now: number, load: (id: string) => SourceLoad | null): PieceSource[] {
  const first = sources[0]
  if (first === undefined) return sources
  const current = s.uploads.get(taskId, index, requester)
  if (current !== undefined) {
    const kept = sources.find(s => s.peerId === current.source)
    // Keep a live assignment (the fetch may be running), unless it sits on the seed while a peer could serve.
    if (kept !== undefined && !(kept.seed && !first.seed)) {
      // A live seed assignment renews the requester's claim (its fetch may still be running).
      if (kept.seed) s.claims.set(taskId, index, requester, now + s.seedClaimTtlMs())
      return [kept, ...sources.filter(s => s !== kept)]
    }
    const old = load(current.source)
    if (old !== null) { old.inFlight--; old.own = Math.max(0, (old.own ?? 0) - 1) }
  }
  s.uploads.assign(taskId, index, requester, first.peerId, now)
  if (first.seed) s.claims.set(taskId, index, requester, now + s.seedClaimTtlMs())
  else s.claims.end(taskId, index, requester, now)
  const snapshot = load(first.peerId)
  if (snapshot !== null) {
    snapshot.inFlight++
    snapshot.own = (snapshot.own ?? 0) + 1
    snapshot.lastAssignedAt = now
  }
  return sources
}
