import type { PieceSource } from '@damselfly/proto'
import { sampleHolders, scanHolders } from './holder-sample.js'
import type { Holdings, HolderSet } from './holdings.js'
import type { PeerRecord, Standing } from './peer-state.js'
import { orderPieces, rankSources, spreadRanker, type PieceDemand, type SeedGate, type SourceLoad } from './rank-sources.js'
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
  /** Live peers with an upload slot free (`inFlight` below their cap). */
  readonly freePeers: ReadonlySet<string>
  /** The supernode's own seed address. */
  seed: () => SourceAddress
  /** The peer if it is announced and not silent for longer than the TTL. */
  peer: (peerId: string) => PeerRecord | undefined
  /** Announced peers silent for longer than the TTL that the sweep has not dropped yet. */
  silentPeers: (now: number) => Iterable<string>
  sourceWaitLimitMs: () => number
  seedClaimTtlMs: () => number
}

/** The task as planning reads it. */
export interface PlanTask {
  readonly taskId: string
  readonly pieceCount: number
  readonly published: ReadonlySet<number>
}

/** One `piecesRequested`: who asks, where it reads, and whether it wants only its window planned. */
export interface PlanRequest {
  requester?: string | undefined
  from?: number | undefined
  /**
   * Plan only what the requester can start next: its window pieces (the only ones a dfclient fetches)
   * in reply order, down to the last one its fetch slots (`activePieces`) could take, not every
   * published piece. Each plan returned is the one a full request would return for that piece, and
   * the request records exactly what a full one records: only the requester's active window pieces
   * are ever assigned, claimed, waited for or advance a holder cursor; the rest of a full reply is
   * output that a streaming dfclient does not start. The simulator asks this way: it keeps a poll's
   * cost independent of the blob's piece count.
   */
  startableOnly?: boolean | undefined
  /**
   * With `from`: plan only the published pieces in [from, from + window), held ones included (the
   * requester fetches nowhere else). Each plan is the one a full request returns for that piece and the
   * request records exactly what a full one records: only window pieces are ever assigned, claimed,
   * waited for or advance a holder cursor, and the pieces left out are ranked without side effects.
   */
  window?: number | undefined
}

/**
 * A peer (or an anonymous caller) asks for the task's pieces: every published piece with ranked
 * sources, lacking pieces rarest first. For a live requester, each of its next `assignmentWindow`
 * lacking pieces is assigned to its first source (`pieceAssigned`), and later pieces in the same
 * reply see that load.
 *
 * The body of the `piecesRequested` event for a known task that has not failed, after expired
 * assignments were dropped. Its cost does not grow with the number of holders: rarity is a holder
 * count minus the few ineligible peers (`exclusions`), and each piece ranks a bounded sample of its
 * holders (`holder-sample.ts`).
 */
export function planPieces (s: PlanState, t: PlanTask, r: PlanRequest, now: number): PiecePlan[] {
  const { taskId } = t
  const requester = r.requester
  /** The requester when it is a live peer: only then are assignments, claims and waits recorded. */
  const live = requester !== undefined && s.peer(requester) !== undefined ? requester : undefined
  const seed = s.seed()
  const excluded = exclusions(s, taskId, requester, seed.peerId, now)
  const loads = new Map<string, SourceLoad | null>()
  const loadOf = (peerId: string): SourceLoad | null => {
    let l = loads.get(peerId)
    if (l === undefined) loads.set(peerId, l = eligibleLoad(s, peerId, excluded, now))
    return l
  }
  const own = requester === undefined ? undefined : s.uploads.ownLoads(requester)
  const ownOf = (peerId: string): number => own?.get(peerId) ?? 0
  s.uploads.describe(seed.peerId, seed.addrs)
  const seedLoad = s.uploads.view(seed.peerId, s.o.maxUploadsSeed, now)
  const holderSet = s.holdings.task(taskId)
  // Peers that may hold pieces but never serve, besides the seed and the requester (usually none).
  const others = [...excluded].filter(id => id !== seed.peerId && id !== requester)

  // The requester's window: where it fetches. With `from` (the piece it reads next) that is its
  // lacking pieces in [from, from + window); else its lowest-indexed lacking pieces (it streams in
  // order). Assigning outside the pieces it fetches would hand it pieces it never starts. Ties inside
  // the window are broken per requester, so concurrent requesters start on different pieces.
  const next = nextPieces(s, t, requester === undefined ? () => false : s.holdings.heldBy(taskId, requester), r.from, r.window)
  const window = new Set(live === undefined ? [] : next)
  const spread = requester === undefined ? undefined : spreadRanker(requester)
  const demands: PieceDemand[] = []
  const startableOnly = r.startableOnly === true
  const listed = startableOnly ? next : r.window !== undefined && r.from !== undefined ? publishedPieces(t, r.from, r.window) : publishedPieces(t)
  for (const index of listed) {
    const set = holderSet(index)
    // `next` holds only pieces the requester lacks.
    const held = !startableOnly && requester !== undefined && set.has(requester)
    demands.push({
      index,
      holders: eligibleCount(set, others, held),
      held,
      ...(spread !== undefined && window.has(index) ? { spread: spread(index) } : {})
    })
  }

  const ordered = orderPieces(demands)
  // The pieces the requester fetches right now (live assignments) take its slots first; the rest of
  // its slots go to window pieces in reply order, which is the order the dfclient starts them in.
  const mine = live === undefined ? undefined : s.uploads.ofRequester(taskId, live)
  const fetching = (index: number): boolean => (mine?.get(index)?.expiresAt ?? 0) > now
  let slots = live === undefined ? 0 : s.o.activePieces - ordered.filter(d => window.has(d.index) && fetching(d.index)).length
  /** Fetch slots of the requester that the plans so far do not fill (`startableOnly` stops at 0). */
  let startable = s.o.activePieces
  const ownSources: readonly string[] = live === undefined || own === undefined ? [] : [...own.keys()]
  const candidates = (index: number, assigning: boolean): SourceLoad[] => sampleHolders({
    holders: holderSet(index),
    loadOf,
    limit: s.o.maxHoldersRanked,
    searchLimit: s.o.maxUsableSearch,
    failuresBeforeDemotion: s.o.failuresBeforeDemotion,
    rotate: assigning,
    current: mine?.get(index)?.source,
    own: ownSources,
    free: s.freePeers,
    ownOf
  })
  const f = s.o.failuresBeforeDemotion
  const limit = s.o.maxSourcesPerPiece
  /**
   * The common answer for an active piece the requester is not fetching yet, found cheaply: no
   * candidate can serve it, a busy holder will free a slot soon (or the seed's copy is taken), and
   * nothing opens the seed to it (no claim of its own, its wait not over). Exactly what ranking the
   * piece in full would answer ("no source yet"); the cursor moves as it would.
   */
  const noSourceYet = (index: number, requester: string): boolean => {
    if (s.claims.has(taskId, index, requester, now)) return false
    const since = s.waits.since(taskId, requester, index)
    if (since !== undefined && now - since >= s.sourceWaitLimitMs()) return false
    const set = holderSet(index)
    const scan = scanHolders({
      holders: set, limit: s.o.maxHoldersRanked, searchLimit: s.o.maxUsableSearch, failuresBeforeDemotion: f, own: ownSources, free: s.freePeers, ownOf
    }, excluded, id => loadOf(id) as SourceLoad)
    if (scan.usable || (!scan.busyWorking && s.claims.others(taskId, index, requester, now) < s.o.seedFanoutPerPiece)) return false
    if (set.size > s.o.maxHoldersRanked) set.cursor = set.cursor + scan.scanned
    return true
  }
  const plans: PiecePlan[] = []
  const waiting: number[] = []
  for (const d of ordered) {
    const inWindow = live !== undefined && window.has(d.index)
    const active = inWindow && (fetching(d.index) || slots > 0)
    if (startableOnly && !active && startable <= 0) continue
    if (active && live !== undefined && !fetching(d.index) && noSourceYet(d.index, live)) {
      waiting.push(d.index)
      plans.push({ index: d.index, sources: [] })
      continue
    }
    // Only a piece the requester is assigned moves the piece's holder cursor: queries record nothing.
    const holders = candidates(d.index, active)
    const rank = (gate: SeedGate | undefined): PieceSource[] => rankSources({ holders, seed: seedLoad, failuresBeforeDemotion: f, limit, gate, ownOf })
    if (live === undefined || !inWindow) {
      const sources = rank(live !== undefined && !d.held ? seedGate(s, taskId, d.index, live, false, holders, now) : undefined)
      if (sources.length > 0) startable--
      plans.push({ index: d.index, sources })
      continue
    }
    if (!active) {
      // Beyond the requester's slots: its usable holders if any, but no seed claim and no wait (it
      // is not trying to fetch this piece yet, so it must neither hold the seed's one copy nor be
      // counted as starved of a source, which would hand it the seed early).
      const sources = rank({ ...seedGate(s, taskId, d.index, live, false, holders, now), fanout: 0 })
      if (sources.length > 0) startable--
      plans.push({ index: d.index, sources })
      continue
    }
    let sources = rank(seedGate(s, taskId, d.index, live, true, holders, now))
    if (sources.length === 0) waiting.push(d.index)
    else if (!fetching(d.index)) slots--
    sources = assign(s, taskId, d.index, live, sources, now)
    if (sources.length > 0) startable--
    plans.push({ index: d.index, sources })
  }
  if (live !== undefined) s.waits.update(taskId, live, waiting, now)
  return plans
}

/** Published pieces in index order (those in [from, from + count) when given). */
function publishedPieces (t: PlanTask, from = 0, count = t.pieceCount): number[] {
  const out: number[] = []
  const end = Math.min(t.pieceCount, from + count)
  for (let i = from; i < end; i++) if (t.published.has(i)) out.push(i)
  return out
}

/**
 * The requester's next pieces, ascending: its lacking published pieces in [from, from + window) with
 * `from`, else its lowest-indexed lacking published pieces (at most `assignmentWindow` either way,
 * and never past the window the requester named).
 */
function nextPieces (s: PlanState, t: PlanTask, held: (index: number) => boolean, from: number | undefined, window: number | undefined): number[] {
  const out: number[] = []
  // A requester that names its window is never assigned beyond it.
  const w = from === undefined || window === undefined ? s.o.assignmentWindow : Math.min(window, s.o.assignmentWindow)
  const start = from ?? 0
  const end = from === undefined ? t.pieceCount : Math.min(t.pieceCount, from + w)
  for (let i = start; i < end && out.length < w; i++) {
    if (t.published.has(i) && !held(i)) out.push(i)
  }
  return out
}

/**
 * The peers that may hold pieces of the task but are never its sources for this requester: the
 * requester, the seed (counted apart), quarantined peers and peers silent past their TTL. Usually a
 * handful, so a piece's eligible holders are counted without walking them.
 */
function exclusions (s: PlanState, taskId: string, requester: string | undefined, seedId: string, now: number): Set<string> {
  const out = new Set<string>([seedId])
  if (requester !== undefined) out.add(requester)
  for (const id of s.standing.quarantinedPeers(now)) out.add(id)
  for (const [id, until] of s.taskQuarantine.get(taskId) ?? []) if (until > now) out.add(id)
  for (const id of s.silentPeers(now)) out.add(id)
  return out
}

/**
 * Holders that may serve: the holder count less the requester (when it holds the piece) and the
 * other excluded peers among them (the seed never reports holdings).
 */
function eligibleCount (set: HolderSet, others: readonly string[], heldByRequester: boolean): number {
  let n = set.size - (heldByRequester ? 1 : 0)
  for (const id of others) if (set.has(id)) n--
  return n
}

/**
 * The load of `peerId` as a source for this task, or null when it may not serve this requester.
 * `excluded` holds every peer that may not (`exclusions`): a holder not in it is announced and live
 * (holdings go with their peer). The load is the ledger's live view, which carries the addresses the
 * peer announced: the assignments this request makes show in it at once.
 */
function eligibleLoad (s: PlanState, peerId: string, excluded: ReadonlySet<string>, now: number): SourceLoad | null {
  return excluded.has(peerId) ? null : s.uploads.view(peerId, s.o.maxUploadsPerPeer, now)
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
 * assigned one first. The loads later pieces of the reply see are the ledger's live views, so they
 * show this assignment at once.
 */
function assign (s: PlanState, taskId: string, index: number, requester: string, sources: PieceSource[], now: number): PieceSource[] {
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
  }
  s.uploads.assign(taskId, index, requester, first.peerId, now)
  if (first.seed) s.claims.set(taskId, index, requester, now + s.seedClaimTtlMs())
  else s.claims.end(taskId, index, requester, now)
  return sources
}
