import { pieceUnits, piecesWithin, type PieceSource } from '@damselfly/proto'
import { sampleHolders, scanHolders, type HolderSampler } from './holder-sample.js'
import type { Holdings, HolderSet } from './holdings.js'
import type { Membership } from './membership.js'
import type { PeerEntry } from './peer-entry.js'
import type { PeerRecord, Standing } from './peer-state.js'
import { orderPieces, rankSources, spreadRanker, type PieceDemand, type SeedGate, type SourceLoad } from './rank-sources.js'
import type { SeedClaims, SourceWaits } from './seed-fanout.js'
import type { Options, PiecePlan, SourceAddress } from './swarm-types.js'
import type { Assignment, UploadLedger } from './upload-ledger.js'

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
  /**
   * The announced peers, live or silent (every holder is one): their entries, the silent ones the
   * sweep has not dropped yet, and those with an upload slot free.
   */
  readonly members: Membership
  /** The supernode's own seed address. */
  seed: () => SourceAddress
  /** The peer if it is announced and not silent for longer than the TTL. */
  peer: (peerId: string) => PeerRecord | undefined
  /** The task's time limits (scaled for its piece size). */
  sourceWaitLimitMs: (taskId: string) => number
  seedClaimTtlMs: (taskId: string) => number
}

/** The task as planning reads it. */
export interface PlanTask {
  readonly taskId: string
  readonly pieceCount: number
  /** Bytes per piece: an assignment counts its `pieceUnits` against the source's upload cap. */
  readonly pieceSize: number
  readonly published: ReadonlySet<number>
}

/** One `piecesRequested`: who asks, where it reads, and whether it wants only its window planned. */
export interface PlanRequest {
  requester?: string | undefined
  from?: number | undefined
  /**
   * Plan only what the requester can start next: its window pieces it is not fetching already (the
   * only ones a dfclient can start) in reply order, down to the last one its fetch slots
   * (`activePieces`) could take, not every published piece. Each plan returned is the one a full
   * request would return for that piece, and the request records exactly what a full one records:
   * only the requester's active window pieces it is not fetching are ever assigned, waited for or
   * advance a holder cursor, and a seed assignment in flight renews its claim; the rest of a full
   * reply is output that a streaming dfclient does not start. The simulator asks this way: it keeps a
   * poll's cost independent of the blob's piece count.
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
  // Budgets are in bytes (proto piece-layout.ts): the requester fetches `activePieces` worth of
  // 4 MiB pieces at once, and each upload counts its size against the source's cap.
  const activePieces = piecesWithin(s.o.activePieces, t.pieceSize)
  const units = pieceUnits(t.pieceSize)
  /** The requester when it is a live peer: only then are assignments, claims and waits recorded. */
  const live = requester !== undefined && s.peer(requester) !== undefined ? requester : undefined
  const seed = s.seed()
  // This request's stamp on the loads it caches in peer entries (`PeerEntry.loadBy`).
  const stamp = ++requests
  const me = requester === undefined ? undefined : s.members.entry(requester)
  const ineligible = exclusions(s, taskId, requester, seed.peerId, now)
  // Peers that may hold pieces but never serve, besides the seed and the requester (usually none).
  const others = [...ineligible].filter(p => p.id !== seed.peerId && p.id !== requester)
  // Asked of nearly every holder looked at. The excluded members are usually the requester alone:
  // comparing a slot or two beats any lookup (a set only when there are more).
  const excludedSlots = [...ineligible].map(p => p.slot)
  const excludedSet = excludedSlots.length > FEW_EXCLUDED ? new Set(excludedSlots) : undefined
  const excluded = (slot: number): boolean => excludedSet === undefined ? excludedSlots.includes(slot) : excludedSet.has(slot)
  /**
   * The load of a holder as a source for this request (read once per request), or null when it may
   * not serve this requester. A holder not excluded is announced and live (holdings go with their
   * peer). The load is the ledger's live view, which carries the addresses the peer announced: the
   * assignments this request makes show in it at once.
   */
  const loadOf = (p: PeerEntry): SourceLoad | null => {
    if (p.loadBy !== stamp) {
      p.loadBy = stamp
      p.load = excluded(p.slot) ? null : s.uploads.viewOf(p, s.o.maxUploadsPerPeer, now)
    }
    return p.load
  }
  const own = requester === undefined ? undefined : s.uploads.ownLoads(requester)
  // The requester's own uploads per source, asked of nearly every holder looked at (by slot) and
  // ranked (by load): a few sources (its fetches in flight), compared rather than looked up. Listed
  // afresh after each assignment this request makes (which changes them). Only members hold pieces.
  const ownSlots: number[] = []
  const ownLoads: SourceLoad[] = []
  const ownCounts: number[] = []
  const listOwn = (): void => {
    ownSlots.length = 0
    ownLoads.length = 0
    ownCounts.length = 0
    for (const [id, n] of own ?? []) {
      const p = s.members.entry(id)
      const l = p === undefined ? null : loadOf(p)
      if (p === undefined || l === null) continue
      ownSlots.push(p.slot)
      ownLoads.push(l)
      ownCounts.push(n)
    }
  }
  listOwn()
  const ownOf = (slot: number): number => {
    const k = ownSlots.indexOf(slot)
    return k < 0 ? 0 : ownCounts[k] as number
  }
  const ownOfLoad = (l: SourceLoad): number => {
    const k = ownLoads.indexOf(l)
    return k < 0 ? 0 : ownCounts[k] as number
  }
  s.uploads.describe(seed.peerId, seed.addrs)
  const seedLoad = s.uploads.view(seed.peerId, s.o.maxUploadsSeed, now)
  const holderSet = s.holdings.task(taskId)

  // The requester's window: where it fetches. With `from` (the piece it reads next) that is its
  // lacking pieces in [from, from + window); else its lowest-indexed lacking pieces (it streams in
  // order). Assigning outside the pieces it fetches would hand it pieces it never starts. Ties inside
  // the window are broken per requester, so concurrent requesters start on different pieces.
  const next = nextPieces(s, t, requester === undefined ? () => false : s.holdings.heldBy(taskId, requester), r.from, r.window)
  const startableOnly = r.startableOnly === true
  // `startableOnly` lists `next` alone: every listed piece is in the window.
  const windowSet = live === undefined || startableOnly ? undefined : new Set(next)
  const inWindow = (index: number): boolean => live !== undefined && (windowSet === undefined || windowSet.has(index))
  const spread = requester === undefined ? undefined : spreadRanker(requester)
  // The pieces the requester fetches right now (live assignments). Read per piece before its own
  // assignment, the only one of its entries this request changes.
  const mine = live === undefined ? undefined : s.uploads.ofRequester(taskId, live)
  // Those pieces, looked up by comparison: the requester fetches a few at a time.
  const fetchingNow: number[] = []
  for (const [index, a] of mine ?? []) if (a.expiresAt > now) fetchingNow.push(index)
  const demands: Demand[] = []
  const listed = startableOnly ? next : r.window !== undefined && r.from !== undefined ? publishedPieces(t, r.from, r.window) : publishedPieces(t)
  for (const index of listed) {
    const set = holderSet(index)
    // `next` holds only pieces the requester lacks.
    const held = !startableOnly && me !== undefined && set.has(me)
    const windowed = inWindow(index)
    demands.push({
      index,
      holders: eligibleCount(set, others, held),
      held,
      spread: spread !== undefined && windowed ? spread(index) : undefined,
      inWindow: windowed,
      fetching: fetchingNow.includes(index)
    })
  }

  const ordered = orderPieces(demands)
  // Live assignments take the requester's slots first; the rest of its slots go to window pieces in
  // reply order, which is the order the dfclient starts them in.
  let slots = 0
  if (live !== undefined) {
    slots = activePieces
    for (const d of ordered) if (d.inWindow && d.fetching) slots--
  }
  /** Fetch slots of the requester that the plans so far do not fill (`startableOnly` stops at 0). */
  let startable = activePieces
  const sampler: HolderSampler = {
    loadOf,
    excluded,
    limit: s.o.maxHoldersRanked,
    searchLimit: s.o.maxUsableSearch,
    failuresBeforeDemotion: s.o.failuresBeforeDemotion,
    // The seed, or a source that left, holds nothing: only members can be pinned.
    own: live === undefined || own === undefined ? [] : members(s, own.keys()),
    free: s.members.free,
    freeBySlot: s.members.freeBySlot,
    failedBySlot: s.members.failedBySlot,
    ownOf
  }
  const candidates = (index: number, assigning: boolean): SourceLoad[] =>
    sampleHolders(sampler, holderSet(index), assigning, currentSource(s, mine?.get(index)))
  const f = s.o.failuresBeforeDemotion
  const limit = s.o.maxSourcesPerPiece
  /**
   * The common answer for an active piece the requester is not fetching yet, found cheaply: no
   * candidate can serve it, a busy holder will free a slot soon (or the seed's copy is taken), and
   * nothing opens the seed to it (no claim of its own, its wait not over). Exactly what ranking the
   * piece in full would answer ("no source yet"); the cursor moves as it would.
   */
  const waitLimitMs = s.sourceWaitLimitMs(taskId)
  const noSourceYet = (index: number, requester: string): boolean => {
    if (s.claims.has(taskId, index, requester, now)) return false
    const since = s.waits.since(taskId, requester, index)
    if (since !== undefined && now - since >= waitLimitMs) return false
    const set = holderSet(index)
    const scan = scanHolders(sampler, set)
    if (scan.usable || (!scan.busyWorking && s.claims.others(taskId, index, requester, now) < s.o.seedFanoutPerPiece)) return false
    if (set.size > s.o.maxHoldersRanked) set.cursor = set.cursor + scan.scanned
    return true
  }
  const plans: PiecePlan[] = []
  const waiting: number[] = []
  for (const d of ordered) {
    const { inWindow, fetching } = d
    const active = inWindow && (fetching || slots > 0)
    if (startableOnly && !active && startable <= 0) continue
    if (startableOnly && fetching && live !== undefined) {
      // A piece it is fetching is not one it can start: what ranking it again would record
      // (`assign`), without the ranking.
      const current = mine?.get(d.index)
      if (current !== undefined) keepAssignment(s, current, now)
      startable--
      continue
    }
    if (active && live !== undefined && !fetching && noSourceYet(d.index, live)) {
      waiting.push(d.index)
      plans.push({ index: d.index, sources: [] })
      continue
    }
    // Only a piece the requester is assigned now moves the piece's holder cursor: queries and pieces
    // in flight (their assignment stands) record nothing.
    const holders = candidates(d.index, active && !fetching)
    const rank = (gate: SeedGate | undefined): PieceSource[] => rankSources({ holders, seed: seedLoad, failuresBeforeDemotion: f, limit, gate, ownOf: ownOfLoad })
    if (live === undefined || !inWindow) {
      const sources = rank(live !== undefined && !d.held ? seedGate(s, taskId, d.index, live, false, holders, now, waitLimitMs) : undefined)
      if (sources.length > 0) startable--
      plans.push({ index: d.index, sources })
      continue
    }
    if (!active) {
      // Beyond the requester's slots: its usable holders if any, but no seed claim and no wait (it
      // is not trying to fetch this piece yet, so it must neither hold the seed's one copy nor be
      // counted as starved of a source, which would hand it the seed early).
      const sources = rank({ ...seedGate(s, taskId, d.index, live, false, holders, now, waitLimitMs), fanout: 0 })
      if (sources.length > 0) startable--
      plans.push({ index: d.index, sources })
      continue
    }
    let sources = rank(seedGate(s, taskId, d.index, live, true, holders, now, waitLimitMs))
    if (sources.length === 0) {
      if (!fetching) waiting.push(d.index)
    } else if (!fetching) slots--
    sources = assign(s, taskId, d.index, live, sources, now, units)
    listOwn()
    if (sources.length > 0) startable--
    plans.push({ index: d.index, sources })
  }
  if (live !== undefined) s.waits.update(taskId, live, waiting, now)
  return plans
}

/** One piece of the request as it is ordered and planned. */
interface Demand extends PieceDemand {
  /** In the requester's window (never for an anonymous or dead requester). */
  inWindow: boolean
  /** The requester has a live assignment of it (a fetch that may be running) when the request began. */
  fetching: boolean
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

/** Counts planning requests: the stamp each one marks peer entries with (unique, never 0). */
let requests = 0

/** Excluded members tested by comparison; beyond this many, by a set. */
const FEW_EXCLUDED = 4

/**
 * The peers that may hold pieces of the task but are never its sources for this requester: the
 * requester, the seed (counted apart), quarantined peers and peers silent past their TTL. Only
 * members can hold pieces or have a slot free, so only they are listed. Usually a handful, so a
 * piece's eligible holders are counted without walking them.
 */
function exclusions (s: PlanState, taskId: string, requester: string | undefined, seedId: string, now: number): Set<PeerEntry> {
  const out = new Set<PeerEntry>()
  const add = (p: PeerEntry | undefined): void => { if (p !== undefined) out.add(p) }
  add(s.members.entry(seedId))
  if (requester !== undefined) add(s.members.entry(requester))
  for (const id of s.standing.quarantinedPeers(now)) add(s.members.entry(id))
  for (const [id, until] of s.taskQuarantine.get(taskId) ?? []) if (until > now) add(s.members.entry(id))
  for (const p of s.members.silent(now)) out.add(p)
  return out
}

/** The members among `ids`, in order. */
function members (s: PlanState, ids: Iterable<string>): PeerEntry[] {
  const out: PeerEntry[] = []
  for (const id of ids) {
    const p = s.members.entry(id)
    if (p !== undefined) out.push(p)
  }
  return out
}

/** The member an assignment is on, if any (the seed is none). */
function currentSource (s: PlanState, a: Assignment | undefined): PeerEntry | undefined {
  return a === undefined ? undefined : s.members.entry(a.source)
}

/**
 * Holders that may serve: the holder count less the requester (when it holds the piece) and the
 * other excluded peers among them (the seed never reports holdings).
 */
function eligibleCount (set: HolderSet, others: readonly PeerEntry[], heldByRequester: boolean): number {
  let n = set.size - (heldByRequester ? 1 : 0)
  for (const p of others) if (set.has(p)) n--
  return n
}


/** The seed's fan-out gate for a live requester and a piece it lacks (see `rank-sources.ts`). */
function seedGate (s: PlanState, taskId: string, index: number, requester: string, inWindow: boolean, holders: readonly SourceLoad[], now: number, waitLimitMs: number): SeedGate {
  const since = inWindow ? s.waits.since(taskId, requester, index) : undefined
  const assigned = s.uploads.get(taskId, index, requester)
  return {
    assignedToHolder: assigned !== undefined && assigned.expiresAt > now && holders.some(h => h.peerId === assigned.source),
    othersOnSeed: s.claims.others(taskId, index, requester, now),
    fanout: s.o.seedFanoutPerPiece,
    ownClaim: s.claims.has(taskId, index, requester, now),
    waitedOut: since !== undefined && now - since >= waitLimitMs
  }
}

/**
 * Records (or keeps) the requester's assignment for one piece and returns the sources with the
 * assigned one first. The loads later pieces of the reply see are the ledger's live views, so they
 * show this assignment at once.
 */
function assign (s: PlanState, taskId: string, index: number, requester: string, sources: PieceSource[], now: number, units: number): PieceSource[] {
  const first = sources[0]
  if (first === undefined) return sources
  const current = s.uploads.get(taskId, index, requester)
  if (current !== undefined) {
    // A live assignment stands: the requester started that fetch when it was planned, and a dfclient
    // never moves a running fetch (it may only hedge the piece its reader waits for). Moving a seed
    // assignment to a peer that came to hold the piece, as this once did, ended the seed claim and
    // charged the peer an upload it never got while the seed kept sending — in the simulator at 1,000
    // peers (window polls) 1.208× the bound, 1.177× without. A seed assignment renews its claim.
    keepAssignment(s, current, now)
    const kept = sources.find(s => s.peerId === current.source)
    return kept === undefined ? sources : [kept, ...sources.filter(s => s !== kept)]
  }
  s.uploads.assign(taskId, index, requester, first.peerId, now, units)
  if (first.seed) s.claims.set(taskId, index, requester, now + s.seedClaimTtlMs(taskId))
  else s.claims.end(taskId, index, requester, now)
  return sources
}

/** A live assignment stands (see `assign`); a seed one renews the requester's claim, as its fetch runs on. */
function keepAssignment (s: PlanState, a: Assignment, now: number): void {
  if (a.source === s.seed().peerId) s.claims.set(a.taskId, a.index, a.requester, now + s.seedClaimTtlMs(a.taskId))
}
