import { RATE_WINDOW_BUCKETS } from './constants.js'
import type { SourceLoad } from './rank-sources.js'
import { SlidingSum } from './sliding-sum.js'

/** One piece handed out: `requester` is expected to fetch piece `index` of `taskId` from `source`. */
export interface Assignment {
  taskId: string
  index: number
  requester: string
  source: string
  /** Budget units the upload counts against the source (`pieceUnits` of the task's piece size). */
  units: number
  expiresAt: number
  /** False once released or expired (it may still sit in the expiry queue). */
  live: boolean
}

/**
 * A source's load history, which is also the shared live view `view()` hands out as a `SourceLoad`:
 * `inFlight` and `lastAssignedAt` are always current, `cap`, `failures` and `rate` as of the last
 * `view()` (planning reads a holder's load through one object, not two). Opaque outside the ledger;
 * `PeerEntry.stats` keeps one at hand.
 */
export interface SourceStats extends SourceLoad {
  rateSum: SlidingSum
  failureSum: SlidingSum
  /**
   * The clock `failures` and `rate` were computed at (-1, which no clock reads: never, or a sample
   * came in since; not NaN, which V8 would keep boxed): a source's load is read by many polls in the
   * same millisecond, and the sums only change with time or a sample.
   */
  summedAt: number
  /** Dropped from the ledger (`forget`, `prune`): a holder of this object must look the source up again. */
  forgotten: boolean
}

/** Keeps a pointer to one source's stats (a peer's entry), so that reading its load needs no lookup. */
export interface StatsHolder {
  readonly id: string
  stats: SourceStats | undefined
}

/**
 * Per-source load: uploads in flight (tentative assignments, one per task, piece and requester, each
 * ending at a result, a release or its expiry), upload rate and failures over a sliding window, and
 * when the source was last assigned. Time is passed in by the owner.
 *
 * In-flight load is counted in budget units, not uploads: an upload counts the `pieceUnits` of its
 * task's piece size (1 per 4 MiB, proto `piece-layout.ts`), so a source's cap is a byte budget and one
 * 16 MiB upload weighs what four 4 MiB ones do. "Uploads" below means those units.
 *
 * Assignments are looked up by task, requester and piece in nested maps (no key strings built per
 * lookup: planning looks them up several times per piece and poll) and expire from a queue in
 * assignment order, which is expiry order because the TTL is fixed and the owner's clock only grows.
 */
export class UploadLedger {
  readonly #ttlMs: number
  readonly #windowMs: number
  readonly #stats = new Map<string, SourceStats>()
  /** taskId → requester → piece index → its live assignment. */
  readonly #byTask = new Map<string, Map<string, Map<number, Assignment>>>()
  /** Every assignment made, oldest first; released ones are skipped and dropped from the front. */
  #queue: Assignment[] = []
  #head = 0
  /** requester → source → its assignments on that source (what a requester's own fetches load a source with). */
  readonly #byRequester = new Map<string, Map<string, number>>()
  readonly #onInFlight: ((source: string, inFlight: number) => void) | undefined

  constructor (init: { assignmentTtlMs: number, rateWindowMs: number, onInFlight?: (source: string, inFlight: number) => void }) {
    this.#ttlMs = init.assignmentTtlMs
    this.#windowMs = init.rateWindowMs
    this.#onInFlight = init.onInFlight
  }

  get (taskId: string, index: number, requester: string): Assignment | undefined {
    return this.#byTask.get(taskId)?.get(requester)?.get(index)
  }

  /** The requester's assignments in a task by piece index, as they stand (not a live view). */
  ofRequester (taskId: string, requester: string): ReadonlyMap<number, Assignment> {
    return this.#byTask.get(taskId)?.get(requester) ?? NO_ASSIGNMENTS
  }

  /** Charges `source` with one upload of `units` (replacing the requester's earlier assignment of the piece). */
  assign (taskId: string, index: number, requester: string, source: string, now: number, units = 1): void {
    this.release(taskId, index, requester)
    const a: Assignment = { taskId, index, requester, source, units, expiresAt: now + this.#ttlMs, live: true }
    let byRequester = this.#byTask.get(taskId)
    if (byRequester === undefined) this.#byTask.set(taskId, byRequester = new Map())
    let byIndex = byRequester.get(requester)
    if (byIndex === undefined) byRequester.set(requester, byIndex = new Map())
    byIndex.set(index, a)
    this.#queue.push(a)
    const s = this.#statsOf(source)
    s.inFlight += units
    s.lastAssignedAt = now
    let own = this.#byRequester.get(requester)
    if (own === undefined) this.#byRequester.set(requester, own = new Map())
    own.set(source, (own.get(source) ?? 0) + units)
    this.#onInFlight?.(source, s.inFlight)
  }

  release (taskId: string, index: number, requester: string): void {
    const byRequester = this.#byTask.get(taskId)
    const byIndex = byRequester?.get(requester)
    const a = byIndex?.get(index)
    if (a === undefined || byIndex === undefined || byRequester === undefined) return
    a.live = false
    byIndex.delete(index)
    if (byIndex.size === 0) {
      byRequester.delete(requester)
      if (byRequester.size === 0) this.#byTask.delete(taskId)
    }
    // The requester's map stays (empty) until it is forgotten: planning holds on to it (`ownLoads`).
    const own = this.#byRequester.get(a.requester)
    const n = own?.get(a.source) ?? 0
    if (n > a.units) own?.set(a.source, n - a.units)
    else own?.delete(a.source)
    const s = this.#stats.get(a.source)
    if (s !== undefined) {
      s.inFlight = Math.max(0, s.inFlight - a.units)
      this.#onInFlight?.(a.source, s.inFlight)
    }
  }

  releaseWhere (match: (a: Assignment) => boolean): void {
    const all: Assignment[] = []
    for (const byRequester of this.#byTask.values()) for (const byIndex of byRequester.values()) for (const a of byIndex.values()) if (match(a)) all.push(a)
    for (const a of all) this.release(a.taskId, a.index, a.requester)
  }

  /** Ends every assignment whose TTL ran out. */
  expire (now: number): void {
    const q = this.#queue
    while (this.#head < q.length) {
      const a = q[this.#head] as Assignment
      if (a.live && a.expiresAt > now) break
      this.#head++
      if (a.live) this.release(a.taskId, a.index, a.requester)
    }
    // Drop the consumed front now and then (amortised O(1) per assignment).
    if (this.#head > 1024 && this.#head * 2 > q.length) {
      this.#queue = q.slice(this.#head)
      this.#head = 0
    }
  }

  /** Uploads in flight from `source` at `now` (assignments past their TTL but not yet expired excluded). */
  inFlight (source: string, now: number): number {
    let n = this.#stats.get(source)?.inFlight ?? 0
    // Only the front of the queue can be past its TTL.
    for (let i = this.#head; i < this.#queue.length; i++) {
      const a = this.#queue[i] as Assignment
      if (a.expiresAt > now) break
      if (a.live && a.source === source) n -= a.units
    }
    return n
  }

  /**
   * Of `source`'s uploads in flight, the ones `requester` itself is fetching. Counts assignments not
   * yet expired: call `expire(now)` first for the count at `now`.
   */
  ownInFlight (source: string, requester: string): number {
    return this.#byRequester.get(requester)?.get(source) ?? 0
  }

  /**
   * Source → `ownInFlight(source, requester)` for every source `requester` has assignments on: a live
   * map that later assignments and releases update (planning looks it up once per request).
   */
  ownLoads (requester: string): ReadonlyMap<string, number> {
    let own = this.#byRequester.get(requester)
    if (own === undefined) this.#byRequester.set(requester, own = new Map())
    return own
  }

  /** The source's uploads in flight, expired assignments included until `expire` (cheap: no scan). */
  charged (source: string): number {
    return this.#stats.get(source)?.inFlight ?? 0
  }

  recordSuccess (source: string, bytes: number, now: number): void {
    const s = this.#statsOf(source)
    s.rateSum.add(bytes, now)
    s.summedAt = -1
  }

  /** Counts a failure; returns the source's failures inside the window, this one included. */
  recordFailure (source: string, now: number): number {
    const s = this.#statsOf(source)
    s.failureSum.add(1, now)
    s.summedAt = -1
    return s.failureSum.sum(now)
  }

  /** The source's failures inside the window ending at `now`. */
  failures (source: string, now: number): number {
    return this.#stats.get(source)?.failureSum.sum(now) ?? 0
  }

  rate (source: string, now: number): number {
    return this.#stats.get(source)?.rateSum.perSecond(now) ?? 0
  }

  /**
   * The source's load as the ranking rule sees it, as one shared object per source that this call
   * refreshes and every assignment or release keeps current: planning reads thousands of loads per
   * second and must not allocate one each time. Read it; never change it.
   */
  view (peerId: string, cap: number, now: number): SourceLoad {
    return refreshed(this.#statsOf(peerId), cap, now)
  }

  /** `view`, with the stats reached through `holder`'s pointer (looked up again once the ledger dropped them). */
  viewOf (holder: StatsHolder, cap: number, now: number): SourceLoad {
    let s = holder.stats
    if (s === undefined || s.forgotten) holder.stats = s = this.#statsOf(holder.id)
    return refreshed(s, cap, now)
  }

  /** Drops a source's history (it left; a returning peer starts afresh). */
  forget (source: string): void {
    const s = this.#stats.get(source)
    if (s !== undefined) s.forgotten = true
    this.#stats.delete(source)
    this.#byRequester.delete(source)
  }

  /** Records the addresses a source is reached at (its live view carries them). */
  describe (peerId: string, addrs: readonly string[]): void {
    this.#statsOf(peerId).addrs = addrs
  }

  /** Drops the history of sources `keep` rejects that have nothing in flight (bounded memory). */
  prune (keep: (source: string) => boolean): void {
    for (const [id, s] of this.#stats) {
      if (s.inFlight === 0 && !keep(id)) {
        s.forgotten = true
        this.#stats.delete(id)
      }
    }
    for (const [id, own] of this.#byRequester) if (own.size === 0 && !keep(id)) this.#byRequester.delete(id)
  }

  #statsOf (source: string): SourceStats {
    let s = this.#stats.get(source)
    if (s === undefined) {
      s = {
        peerId: source,
        addrs: [],
        cap: 0,
        inFlight: 0,
        failures: 0,
        rate: 0,
        lastAssignedAt: 0,
        rateSum: new SlidingSum(this.#windowMs, RATE_WINDOW_BUCKETS),
        failureSum: new SlidingSum(this.#windowMs, RATE_WINDOW_BUCKETS),
        summedAt: -1,
        forgotten: false
      }
      this.#stats.set(source, s)
    }
    return s
  }
}

/** The source's stats as its load at `now` with `cap`. */
function refreshed (s: SourceStats, cap: number, now: number): SourceLoad {
  s.cap = cap
  if (s.summedAt !== now) {
    s.failures = s.failureSum.sum(now)
    s.rate = s.rateSum.perSecond(now)
    s.summedAt = now
  }
  return s
}

const NO_ASSIGNMENTS: ReadonlyMap<number, Assignment> = new Map()
