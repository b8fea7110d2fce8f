import { RATE_WINDOW_BUCKETS } from './constants.js'
import type { SourceLoad } from './rank-sources.js'
import { SlidingSum } from './sliding-sum.js'

/** One piece handed out: `requester` is expected to fetch piece `index` of `taskId` from `source`. */
export interface Assignment {
  taskId: string
  index: number
  requester: string
  source: string
  expiresAt: number
}

interface SourceStats {
  inFlight: number
  lastAssignedAt: number
  rate: SlidingSum
  failures: SlidingSum
}

/**
 * Per-source load: uploads in flight (tentative assignments, one per task, piece and requester, each
 * ending at a result, a release or its expiry), upload rate and failures over a sliding window, and
 * when the source was last assigned. Time is passed in by the owner.
 */
export class UploadLedger {
  readonly #ttlMs: number
  readonly #windowMs: number
  readonly #stats = new Map<string, SourceStats>()
  /** Insertion order is expiry order: the TTL is fixed and the owner's clock only grows. */
  readonly #assignments = new Map<string, Assignment>()

  constructor (init: { assignmentTtlMs: number, rateWindowMs: number }) {
    this.#ttlMs = init.assignmentTtlMs
    this.#windowMs = init.rateWindowMs
  }

  get (taskId: string, index: number, requester: string): Assignment | undefined {
    return this.#assignments.get(key(taskId, index, requester))
  }

  /** Charges `source` with one upload (replacing the requester's earlier assignment of the piece). */
  assign (taskId: string, index: number, requester: string, source: string, now: number): void {
    this.release(taskId, index, requester)
    this.#assignments.set(key(taskId, index, requester), { taskId, index, requester, source, expiresAt: now + this.#ttlMs })
    const s = this.#statsOf(source)
    s.inFlight++
    s.lastAssignedAt = now
  }

  release (taskId: string, index: number, requester: string): void {
    const k = key(taskId, index, requester)
    const a = this.#assignments.get(k)
    if (a === undefined) return
    this.#assignments.delete(k)
    const s = this.#stats.get(a.source)
    if (s !== undefined) s.inFlight = Math.max(0, s.inFlight - 1)
  }

  releaseWhere (match: (a: Assignment) => boolean): void {
    for (const a of [...this.#assignments.values()]) if (match(a)) this.release(a.taskId, a.index, a.requester)
  }

  /** Ends every assignment whose TTL ran out. */
  expire (now: number): void {
    for (const a of this.#assignments.values()) {
      if (a.expiresAt > now) break
      this.release(a.taskId, a.index, a.requester)
    }
  }

  /** Uploads in flight from `source` at `now` (assignments past their TTL but not yet expired excluded). */
  inFlight (source: string, now: number): number {
    let n = 0
    for (const a of this.#assignments.values()) if (a.source === source && a.expiresAt > now) n++
    return n
  }

  /** Of those, the ones `requester` itself is fetching. */
  inFlightTo (source: string, requester: string, now: number): number {
    let n = 0
    for (const a of this.#assignments.values()) if (a.source === source && a.requester === requester && a.expiresAt > now) n++
    return n
  }

  recordSuccess (source: string, bytes: number, now: number): void {
    this.#statsOf(source).rate.add(bytes, now)
  }

  /** Counts a failure; returns the source's failures inside the window, this one included. */
  recordFailure (source: string, now: number): number {
    const failures = this.#statsOf(source).failures
    failures.add(1, now)
    return failures.sum(now)
  }

  rate (source: string, now: number): number {
    return this.#stats.get(source)?.rate.perSecond(now) ?? 0
  }

  /** The source's load as the ranking rule sees it. */
  load (peerId: string, addrs: readonly string[], cap: number, now: number): SourceLoad {
    const s = this.#stats.get(peerId)
    return {
      peerId,
      addrs,
      cap,
      inFlight: s?.inFlight ?? 0,
      failures: s?.failures.sum(now) ?? 0,
      rate: s?.rate.perSecond(now) ?? 0,
      lastAssignedAt: s?.lastAssignedAt ?? 0
    }
  }

  /** Drops a source's history (it left; a returning peer starts afresh). */
  forget (source: string): void {
    this.#stats.delete(source)
  }

  /** Drops the history of sources `keep` rejects that have nothing in flight (bounded memory). */
  prune (keep: (source: string) => boolean): void {
    for (const [id, s] of this.#stats) if (s.inFlight === 0 && !keep(id)) this.#stats.delete(id)
  }

  #statsOf (source: string): SourceStats {
    let s = this.#stats.get(source)
    if (s === undefined) {
      s = { inFlight: 0, lastAssignedAt: 0, rate: new SlidingSum(this.#windowMs, RATE_WINDOW_BUCKETS), failures: new SlidingSum(this.#windowMs, RATE_WINDOW_BUCKETS) }
      this.#stats.set(source, s)
    }
    return s
  }
}

function key (taskId: string, index: number, requester: string): string {
  return `${taskId}\n${index}\n${requester}`
}
