import type { ErrorCode, PieceSource, TaskState } from '@damselfly/proto'
import * as C from './constants.js'
import { Holdings } from './holdings.js'
import { peerStateOf, Standing, type PeerRecord, type PeerState } from './peer-state.js'
import { orderPieces, rankSources, spreadRank, type PieceDemand, type SeedGate, type SourceLoad } from './rank-sources.js'
import { SeedClaims, SourceWaits } from './seed-fanout.js'
import { UploadLedger } from './upload-ledger.js'

/**
 * The swarm scheduler: one state object holding, for every task, which peer holds which piece, which
 * pieces are in flight from which source to which peer, each source's recent upload rate and
 * failures, and who is quarantined; and answering a peer's "where do I get the pieces I lack?" with a
 * ranked list of sources per piece (the rule: `rank-sources.ts`).
 *
 * **Events are the only mutations.** Every public method below the "events" line is one named event
 * (`peerAnnounced`, `peerLeft`, `pieceHeld`s, `piecesRequested` (which records `pieceAssigned`s),
 * `pieceTransferSucceeded`, …). Each runs to completion synchronously: no awaits, no I/O, time read
 * from the injected clock once per event. The HTTP routes and the task board are the adapters that
 * turn requests and durable task changes into events (kraken's `scheduler/events.go` pattern).
 *
 * **Peer states** are in `peer-state.ts`. **Task states** mirror the durable task record:
 * ```
 *   (none) ──taskStarted──▶ running ──taskSucceeded──▶ succeeded
 *                           running ──taskFailed─────▶ failed      (holders and in-flight dropped)
 *   succeeded | failed ──taskStarted──▶ running   (fetched again)
 *   any ──taskForgotten──▶ (none)                 (holders kept: see taskForgotten)
 *   (none) ──taskLoaded (startup)──▶ succeeded | failed
 * ```
 * Only pieces whose digest the seed published are offered; a task that is not known or failed
 * offers nothing.
 *
 * **In flight.** Handing out a ranked list records a tentative assignment of the piece to its first
 * source, for the requester's next `ASSIGNMENT_WINDOW` lacking pieces only. It ends with the
 * requester's result for that piece, its report that it holds the piece, its departure, or after
 * `ASSIGNMENT_TTL_MS`, so a lost result never pins a source's load. A requester re-polling keeps its
 * live assignment (its fetch may already be running) unless that source is no longer eligible, or it
 * was the seed and a usable peer now holds the piece.
 *
 * **Seed claims and waits** (the seed's fan-out rule, `rank-sources.ts`). Assigning a piece to the
 * seed also records the requester's claim on that seed upload; at most `SEED_FANOUT_PER_PIECE`
 * requesters hold live claims on one piece unless a requester has waited out
 * `SOURCE_WAIT_LIMIT_MS`. Both time limits (`SEED_CLAIM_TTL_MS`, `SOURCE_WAIT_LIMIT_MS`) stretch to
 * `SLOW_SEED_TRANSFERS` typical seed transfers (a moving average of the `durationMs` of reported seed
 * successes) when those are slow, up to `MAX_STRETCHED_WAIT_MS`. A claim is renewed by its requester's polls and ends with the requester's
 * failure result (which wakes pollers: the seed can be offered again), `SEED_ARRIVAL_GRACE_MS` after
 * its success result, with its held-piece report, its departure, or `SEED_CLAIM_TTL_MS` after its
 * last renewal. A requester told "no source yet" for a piece of its window has a wait recorded;
 * `msUntilWaitLimit` tells the long-poll when the oldest one runs out, which is when the answer
 * changes by time alone.
 *
 * **Changes that alter what a poller would be told** (holdings, departures, quarantines, a source
 * being demoted) are announced through `onTaskChanged` once the event finished, which wakes the
 * task's long-pollers. Assignments and rate samples are not announced: they change on every poll and
 * waking every poller for each would turn long-polls into a busy loop.
 */

export interface SourceAddress {
  peerId: string
  addrs: readonly string[]
}

/** Options; every one defaults to the constant of the same name in `constants.ts`. */
export interface SwarmInit {
  peerTtlMs?: number
  maxUploadsPerPeer?: number
  maxUploadsSeed?: number
  assignmentTtlMs?: number
  assignmentWindow?: number
  rateWindowMs?: number
  failuresBeforeDemotion?: number
  taskQuarantineMs?: number
  globalQuarantineStrikes?: number
  strikeWindowMs?: number
  globalQuarantineMs?: number
  maxSourcesPerPiece?: number
  seedFanoutPerPiece?: number
  seedClaimTtlMs?: number
  seedArrivalGraceMs?: number
  sourceWaitLimitMs?: number
  slowSeedTransfers?: number
  seedTransferEwma?: number
  maxStretchedWaitMs?: number
}

export interface SwarmComponents {
  now: () => number
  /** The supernode's own seed address (it can change once its libp2p node has started). */
  seed: () => SourceAddress
  /** Called once per changed task after an event completes; must not call back into the swarm. */
  onTaskChanged?: (taskId: string) => void
}

/** One piece of a reply: its index and ranked sources (the caller adds the digest). */
export interface PiecePlan {
  index: number
  sources: PieceSource[]
}

/** What a requester reports about one transfer. */
export interface TransferResult {
  index: number
  sourcePeerId: string
  ok: boolean
  code?: string | undefined
  bytes?: number | undefined
  /** How long the transfer took, as the requester measured it. */
  durationMs?: number | undefined
}

/** A quarantine an event started, for the caller to log. */
export interface QuarantineStarted {
  peerId: string
  scope: 'task' | 'global'
}

/** The result code that quarantines a source: the piece it served failed SHA-256 verification. */
export const DIGEST_MISMATCH_CODE = 'DF_ERR_PIECE_DIGEST_MISMATCH' satisfies ErrorCode

interface TaskEntry {
  state: TaskState
  pieceCount: number
  published: Set<number>
}

type Options = Required<SwarmInit>

export class Swarm {
  readonly #o: Options
  readonly #c: SwarmComponents
  readonly #peers = new Map<string, PeerRecord>()
  readonly #standing: Standing
  readonly #tasks = new Map<string, TaskEntry>()
  readonly #holdings = new Holdings()
  /** taskId → peerId → end of that peer's quarantine for the task. */
  readonly #taskQuarantine = new Map<string, Map<string, number>>()
  readonly #uploads: UploadLedger
  readonly #claims = new SeedClaims()
  readonly #waits = new SourceWaits()
  readonly #changed = new Set<string>()
  #depth = 0
  /** Moving average of reported successful seed transfer durations (ms); undefined before the first. */
  #seedTransferMs: number | undefined

  constructor (init: SwarmInit, components: SwarmComponents) {
    this.#o = {
      peerTtlMs: init.peerTtlMs ?? C.PEER_TTL_MS,
      maxUploadsPerPeer: init.maxUploadsPerPeer ?? C.MAX_UPLOADS_PER_PEER,
      maxUploadsSeed: init.maxUploadsSeed ?? C.MAX_UPLOADS_SEED,
      assignmentTtlMs: init.assignmentTtlMs ?? C.ASSIGNMENT_TTL_MS,
      assignmentWindow: init.assignmentWindow ?? C.ASSIGNMENT_WINDOW,
      rateWindowMs: init.rateWindowMs ?? C.RATE_WINDOW_MS,
      failuresBeforeDemotion: init.failuresBeforeDemotion ?? C.FAILURES_BEFORE_DEMOTION,
      taskQuarantineMs: init.taskQuarantineMs ?? C.TASK_QUARANTINE_MS,
      globalQuarantineStrikes: init.globalQuarantineStrikes ?? C.GLOBAL_QUARANTINE_STRIKES,
      strikeWindowMs: init.strikeWindowMs ?? C.STRIKE_WINDOW_MS,
      globalQuarantineMs: init.globalQuarantineMs ?? C.GLOBAL_QUARANTINE_MS,
      maxSourcesPerPiece: init.maxSourcesPerPiece ?? C.MAX_SOURCES_PER_PIECE,
      seedFanoutPerPiece: init.seedFanoutPerPiece ?? C.SEED_FANOUT_PER_PIECE,
      seedClaimTtlMs: init.seedClaimTtlMs ?? C.SEED_CLAIM_TTL_MS,
      seedArrivalGraceMs: init.seedArrivalGraceMs ?? C.SEED_ARRIVAL_GRACE_MS,
      sourceWaitLimitMs: init.sourceWaitLimitMs ?? C.SOURCE_WAIT_LIMIT_MS,
      slowSeedTransfers: init.slowSeedTransfers ?? C.SLOW_SEED_TRANSFERS,
      seedTransferEwma: init.seedTransferEwma ?? C.SEED_TRANSFER_EWMA,
      maxStretchedWaitMs: init.maxStretchedWaitMs ?? C.MAX_STRETCHED_WAIT_MS
    }
    this.#c = components
    this.#uploads = new UploadLedger({ assignmentTtlMs: this.#o.assignmentTtlMs, rateWindowMs: this.#o.rateWindowMs })
    this.#standing = new Standing({ strikesToQuarantine: this.#o.globalQuarantineStrikes, strikeWindowMs: this.#o.strikeWindowMs, quarantineMs: this.#o.globalQuarantineMs })
  }

  // ---- queries (no state changes) ----

  get peerTtlMs (): number { return this.#o.peerTtlMs }

  /** The peer if it is announced and not silent for longer than the TTL. */
  peer (peerId: string): PeerRecord | undefined {
    const p = this.#peers.get(peerId)
    return p !== undefined && this.#c.now() - p.lastSeen <= this.#o.peerTtlMs ? p : undefined
  }

  /** `left` covers both "never announced" and "gone" (its record was dropped). */
  peerState (peerId: string): PeerState | 'left' {
    const p = this.#peers.get(peerId)
    return p === undefined ? 'left' : peerStateOf(p, this.#c.now(), this.#o.peerTtlMs, this.#standing)
  }

  /** Live peers (the `damselfly_peers` gauge). */
  peerCount (): number {
    const now = this.#c.now()
    let n = 0
    for (const p of this.#peers.values()) if (now - p.lastSeen <= this.#o.peerTtlMs) n++
    return n
  }

  taskState (taskId: string): TaskState | undefined {
    return this.#tasks.get(taskId)?.state
  }

  /** Known tasks by state (the `damselfly_tasks` gauge). */
  tasksByState (): Record<TaskState, number> {
    const counts: Record<TaskState, number> = { running: 0, succeeded: 0, failed: 0 }
    for (const t of this.#tasks.values()) counts[t.state]++
    return counts
  }

  /** Live holders of a piece, quarantined or not. */
  holders (taskId: string, index: number): string[] {
    return [...this.#holdings.holders(taskId, index)].filter(id => this.peer(id) !== undefined)
  }

  /** Uploads handed out to `source` and not yet finished or expired. */
  inFlight (source: string): number {
    return this.#uploads.inFlight(source, this.#c.now())
  }

  /** The source's upload rate (bytes/s) over the rate window, from reported successes. */
  uploadRate (source: string): number {
    return this.#uploads.rate(source, this.#c.now())
  }

  /**
   * Milliseconds until the requester's oldest "no source yet" for a piece of the task runs out (0 when
   * it already has), or undefined when it waits for none: its long-poll should end by then.
   */
  msUntilWaitLimit (taskId: string, requester: string): number | undefined {
    const since = this.#waits.earliest(taskId, requester)
    return since === undefined ? undefined : Math.max(0, since + this.sourceWaitLimitMs() - this.#c.now())
  }

  /**
   * The limits in force: the configured ones, stretched to `slowSeedTransfers` typical seed transfers
   * when seed transfers are slow (see `SLOW_SEED_TRANSFERS`), never beyond `maxStretchedWaitMs`.
   */
  sourceWaitLimitMs (): number { return this.#stretched(this.#o.sourceWaitLimitMs) }
  seedClaimTtlMs (): number { return this.#stretched(this.#o.seedClaimTtlMs) }

  // ---- events ----

  /** A peer announced itself (idempotent; holdings survive a re-announce of a live peer). */
  peerAnnounced (e: { peerId: string, addrs: readonly string[], hostname: string, version?: string | undefined }): void {
    this.#event(now => {
      if (this.#peers.has(e.peerId) && this.peer(e.peerId) === undefined) this.#removePeer(e.peerId)
      this.#peers.set(e.peerId, { peerId: e.peerId, addrs: [...e.addrs], hostname: e.hostname, ...(e.version === undefined ? {} : { version: e.version }), lastSeen: now })
    })
  }

  /** A heartbeat; false when the peer is unknown or already silent past its TTL (it must announce again). */
  peerHeartbeat (peerId: string): boolean {
    return this.#event(now => {
      const p = this.#peers.get(peerId)
      if (p === undefined) return false
      if (now - p.lastSeen > this.#o.peerTtlMs) {
        this.#removePeer(peerId)
        return false
      }
      p.lastSeen = now
      return true
    })
  }

  /** A peer left: its record, holdings and in-flight work go at once. */
  peerLeft (peerId: string): boolean {
    return this.#event(() => this.#removePeer(peerId))
  }

  /** Applies `peerExpired` to every silent peer and prunes lapsed standing; returns the expired ids. */
  expireSilentPeers (): string[] {
    return this.#event(now => {
      const expired = [...this.#peers.values()].filter(p => now - p.lastSeen > this.#o.peerTtlMs).map(p => p.peerId)
      for (const peerId of expired) this.#removePeer(peerId)
      this.#uploads.expire(now)
      this.#claims.prune(now)
      this.#waits.prune(id => this.#peers.has(id))
      this.#standing.prune(now)
      for (const [taskId, q] of this.#taskQuarantine) {
        for (const [peerId, until] of q) if (until <= now) q.delete(peerId)
        if (q.size === 0) this.#taskQuarantine.delete(taskId)
      }
      const seedId = this.#c.seed().peerId
      this.#uploads.prune(id => id === seedId || this.#peers.has(id))
      return expired
    })
  }

  /** A task known from the durable store at startup. */
  taskLoaded (e: { taskId: string, pieceCount: number, state: TaskState }): void {
    this.#event(() => {
      const published = new Set<number>()
      if (e.state === 'succeeded') for (let i = 0; i < e.pieceCount; i++) published.add(i)
      this.#tasks.set(e.taskId, { state: e.state, pieceCount: e.pieceCount, published })
    })
  }

  /** A task (re)started fetching from upstream; no piece is published yet. */
  taskStarted (e: { taskId: string, pieceCount: number }): void {
    this.#event(() => {
      const old = this.#tasks.get(e.taskId)
      // Same digest means same layout; a different count means the old holdings cannot be trusted.
      if (old !== undefined && old.pieceCount !== e.pieceCount) this.#dropTaskSwarm(e.taskId)
      this.#tasks.set(e.taskId, { state: 'running', pieceCount: e.pieceCount, published: new Set() })
    })
  }

  /** The seed hashed piece `index` and published its digest: it can now be offered. */
  pieceDigestPublished (e: { taskId: string, index: number }): void {
    this.#event(() => {
      const t = this.#tasks.get(e.taskId)
      if (t !== undefined && t.state !== 'failed' && e.index < t.pieceCount) t.published.add(e.index)
    })
  }

  taskSucceeded (e: { taskId: string }): void {
    this.#event(() => {
      const t = this.#tasks.get(e.taskId)
      if (t === undefined) return
      t.state = 'succeeded'
      for (let i = 0; i < t.pieceCount; i++) t.published.add(i)
    })
  }

  /** The blob failed its digest or the fetch broke: its piece digests, and so every holding, are void. */
  taskFailed (e: { taskId: string }): void {
    this.#event(() => {
      const t = this.#tasks.get(e.taskId)
      if (t !== undefined) {
        t.state = 'failed'
        t.published.clear()
      }
      this.#dropTaskSwarm(e.taskId)
    })
  }

  /**
   * The task's record is gone (its verified data vanished from the seed's disk and it will be fetched
   * again). Holdings are kept: peers verified their pieces against digests of the same content, and
   * they would not re-report them.
   */
  taskForgotten (e: { taskId: string }): void {
    this.#event(() => {
      this.#tasks.delete(e.taskId)
      this.#uploads.releaseWhere(a => a.taskId === e.taskId)
      this.#claims.dropTask(e.taskId)
      this.#waits.dropTask(e.taskId)
    })
  }

  /** A live peer verified and now serves pieces of a task (`pieceHeld`, batched). */
  piecesHeld (e: { taskId: string, peerId: string, indices: readonly number[] }): boolean {
    return this.#event(now => {
      if (this.peer(e.peerId) === undefined) return false
      const t = this.#tasks.get(e.taskId)
      if (t?.state === 'failed') return true
      this.#holdings.add(e.taskId, e.peerId, e.indices)
      // Holding a piece ends the peer's transfer of it, whether or not it reported a result.
      for (const index of e.indices) {
        this.#uploads.release(e.taskId, index, e.peerId)
        this.#claims.end(e.taskId, index, e.peerId, now)
      }
      this.#changed.add(e.taskId)
      return true
    })
  }

  /**
   * A peer (or an anonymous caller) asks for the task's pieces: every published piece with ranked
   * sources, lacking pieces rarest first. For a live requester, each of its next `assignmentWindow`
   * lacking pieces is assigned to its first source (`pieceAssigned`), and later pieces in the same
   * reply see that load.
   */
  piecesRequested (e: { taskId: string, requester?: string | undefined }): PiecePlan[] {
    return this.#event(now => {
      const t = this.#tasks.get(e.taskId)
      if (t === undefined || t.state === 'failed') return []
      this.#uploads.expire(now)
      const requester = e.requester
      /** The requester when it is a live peer: only then are assignments, claims and waits recorded. */
      const live = requester !== undefined && this.peer(requester) !== undefined ? requester : undefined
      const assigning = live !== undefined
      const seed = this.#c.seed()
      const loads = new Map<string, SourceLoad | null>()
      const loadOf = (peerId: string): SourceLoad | null => {
        let l = loads.get(peerId)
        if (l === undefined) loads.set(peerId, l = this.#eligibleLoad(e.taskId, peerId, requester, seed.peerId, now))
        return l
      }
      const seedLoad = this.#uploads.load(seed.peerId, seed.addrs, this.#o.maxUploadsSeed, now)

      const demands: PieceDemand[] = []
      const eligible = new Map<number, SourceLoad[]>()
      for (const index of [...t.published].sort((a, b) => a - b)) {
        const set = this.#holdings.holders(e.taskId, index)
        const loadsHere: SourceLoad[] = []
        for (const id of set) {
          const l = loadOf(id)
          if (l !== null) loadsHere.push(l)
        }
        eligible.set(index, loadsHere)
        demands.push({ index, holders: loadsHere.length, held: requester !== undefined && set.has(requester) })
      }
      // The requester's window: its lowest-indexed lacking pieces (it streams in order). Ties inside
      // it are broken per requester, so concurrent requesters start on different pieces.
      const window = new Set(demands.filter(d => !d.held).slice(0, assigning ? this.#o.assignmentWindow : 0).map(d => d.index))
      if (requester !== undefined) for (const d of demands) if (window.has(d.index)) d.spread = spreadRank(requester, d.index)

      const plans: PiecePlan[] = []
      const waiting: number[] = []
      for (const d of orderPieces(demands)) {
        const holders = eligible.get(d.index) ?? []
        const gate = live !== undefined && !d.held ? this.#seedGate(e.taskId, d.index, live, window.has(d.index), holders, now) : undefined
        let sources = rankSources({ holders, seed: seedLoad, failuresBeforeDemotion: this.#o.failuresBeforeDemotion, limit: this.#o.maxSourcesPerPiece, gate })
        if (live !== undefined && window.has(d.index)) {
          if (sources.length === 0) waiting.push(d.index)
          sources = this.#assign(e.taskId, d.index, live, sources, now, id => id === seed.peerId ? seedLoad : loadOf(id))
        }
        plans.push({ index: d.index, sources })
      }
      if (live !== undefined) this.#waits.update(e.taskId, live, waiting, now)
      return plans
    })
  }

  /** The requester fetched and verified a piece from `source` (`bytes` feed the source's upload rate). */
  pieceTransferSucceeded (e: { taskId: string, requester: string, index: number, source: string, bytes?: number | undefined, durationMs?: number | undefined }): void {
    this.#event(now => {
      this.#uploads.release(e.taskId, e.index, e.requester)
      if (e.source === this.#c.seed().peerId) {
        // The piece arrived; its claim lasts until the requester reports holding it (or the grace ends).
        this.#claims.shorten(e.taskId, e.index, e.requester, now + this.#o.seedArrivalGraceMs, now)
        if (e.durationMs !== undefined && Number.isFinite(e.durationMs) && e.durationMs >= 0) {
          const a = this.#o.seedTransferEwma
          this.#seedTransferMs = this.#seedTransferMs === undefined ? e.durationMs : a * e.durationMs + (1 - a) * this.#seedTransferMs
        }
      }
      if (e.source === e.requester || e.bytes === undefined || e.bytes <= 0) return
      this.#uploads.recordSuccess(e.source, e.bytes, now)
    })
  }

  /**
   * A transfer failed. A digest mismatch quarantines the source for the task (and counts a strike
   * towards a global quarantine); any other failure counts against the source's ranking. The seed is
   * never quarantined: it computed the digests, so a mismatch from it is its own disk going bad, which
   * quarantining could only turn into "no source at all".
   */
  pieceTransferFailed (e: { taskId: string, requester: string, index: number, source: string, code?: string | undefined }): QuarantineStarted | undefined {
    return this.#event(now => {
      this.#uploads.release(e.taskId, e.index, e.requester)
      // A failed seed transfer frees the piece's seed fan-out: requesters told "no source yet" may get it.
      if (e.source === this.#c.seed().peerId && this.#claims.end(e.taskId, e.index, e.requester, now)) this.#changed.add(e.taskId)
      if (e.source === e.requester) return undefined
      if (e.code === DIGEST_MISMATCH_CODE && e.source !== this.#c.seed().peerId) return this.#quarantine(e.taskId, e.index, e.source, now)
      // Crossing the threshold changes rankings: tell pollers once, not on every further failure.
      if (this.#uploads.recordFailure(e.source, now) === this.#o.failuresBeforeDemotion) this.#changed.add(e.taskId)
      return undefined
    })
  }

  /** A batch of results from one requester, applied as one event. */
  pieceResultsReported (e: { taskId: string, requester: string, results: readonly TransferResult[] }): QuarantineStarted[] {
    return this.#event(() => {
      const started: QuarantineStarted[] = []
      for (const r of e.results) {
        const base = { taskId: e.taskId, requester: e.requester, index: r.index, source: r.sourcePeerId }
        if (r.ok) {
          this.pieceTransferSucceeded({ ...base, bytes: r.bytes, durationMs: r.durationMs })
        } else {
          const q = this.pieceTransferFailed({ ...base, code: r.code })
          if (q !== undefined) started.push(q)
        }
      }
      return started
    })
  }

  // ---- internals ----

  #stretched (base: number): number {
    const typical = this.#seedTransferMs
    if (typical === undefined) return base
    return Math.max(base, Math.min(this.#o.maxStretchedWaitMs, Math.round(this.#o.slowSeedTransfers * typical)))
  }

  /** Runs one event: reads the clock once, and announces changed tasks when the outermost event ends. */
  #event<T> (apply: (now: number) => T): T {
    this.#depth++
    try {
      return apply(this.#c.now())
    } finally {
      this.#depth--
      if (this.#depth === 0 && this.#changed.size > 0) {
        const changed = [...this.#changed]
        this.#changed.clear()
        for (const taskId of changed) this.#c.onTaskChanged?.(taskId)
      }
    }
  }

  /** The load of `peerId` as a source for this task and requester, or null when it may not serve. */
  #eligibleLoad (taskId: string, peerId: string, requester: string | undefined, seedId: string, now: number): SourceLoad | null {
    if (peerId === requester || peerId === seedId) return null
    const p = this.peer(peerId)
    if (p === undefined) return null
    if (this.#standing.quarantinedUntil(peerId, now) !== undefined) return null
    const until = this.#taskQuarantine.get(taskId)?.get(peerId)
    if (until !== undefined && until > now) return null
    const load = this.#uploads.load(peerId, p.addrs, this.#o.maxUploadsPerPeer, now)
    if (requester !== undefined) load.own = this.#uploads.inFlightTo(peerId, requester, now)
    return load
  }

  /** The seed's fan-out gate for a live requester and a piece it lacks (see `rank-sources.ts`). */
  #seedGate (taskId: string, index: number, requester: string, inWindow: boolean, holders: readonly SourceLoad[], now: number): SeedGate {
    const since = inWindow ? this.#waits.since(taskId, requester, index) : undefined
    const assigned = this.#uploads.get(taskId, index, requester)
    return {
      assignedToHolder: assigned !== undefined && assigned.expiresAt > now && holders.some(h => h.peerId === assigned.source),
      othersOnSeed: this.#claims.others(taskId, index, requester, now),
      fanout: this.#o.seedFanoutPerPiece,
      ownClaim: this.#claims.has(taskId, index, requester, now),
      waitedOut: since !== undefined && now - since >= this.sourceWaitLimitMs()
    }
  }

  /**
   * Records (or keeps) the requester's assignment for one piece and returns the sources with the
   * assigned one first. `load` gives the reply's load snapshot, updated so later pieces see it.
   */
  #assign (taskId: string, index: number, requester: string, sources: PieceSource[], now: number, load: (id: string) => SourceLoad | null): PieceSource[] {
    const first = sources[0]
    if (first === undefined) return sources
    const current = this.#uploads.get(taskId, index, requester)
    if (current !== undefined) {
      const kept = sources.find(s => s.peerId === current.source)
      // Keep a live assignment (the fetch may be running), unless it sits on the seed while a peer could serve.
      if (kept !== undefined && !(kept.seed && !first.seed)) {
        // A live seed assignment renews the requester's claim (its fetch may still be running).
        if (kept.seed) this.#claims.set(taskId, index, requester, now + this.seedClaimTtlMs())
        return [kept, ...sources.filter(s => s !== kept)]
      }
      const old = load(current.source)
      if (old !== null) { old.inFlight--; old.own = Math.max(0, (old.own ?? 0) - 1) }
    }
    this.#uploads.assign(taskId, index, requester, first.peerId, now)
    if (first.seed) this.#claims.set(taskId, index, requester, now + this.seedClaimTtlMs())
    else this.#claims.end(taskId, index, requester, now)
    const snapshot = load(first.peerId)
    if (snapshot !== null) {
      snapshot.inFlight++
      snapshot.own = (snapshot.own ?? 0) + 1
      snapshot.lastAssignedAt = now
    }
    return sources
  }

  #quarantine (taskId: string, index: number, source: string, now: number): QuarantineStarted {
    let q = this.#taskQuarantine.get(taskId)
    if (q === undefined) this.#taskQuarantine.set(taskId, q = new Map())
    q.set(source, now + this.#o.taskQuarantineMs)
    // Its copy of this piece is bad: it must not be offered again when the quarantine lapses.
    this.#holdings.dropPiece(taskId, index, source)
    this.#changed.add(taskId)
    if (!this.#standing.strike(source, taskId, now)) return { peerId: source, scope: 'task' }
    for (const t of this.#holdings.tasksOf(source)) this.#changed.add(t)
    return { peerId: source, scope: 'global' }
  }

  #removePeer (peerId: string): boolean {
    const existed = this.#peers.delete(peerId)
    for (const taskId of this.#holdings.dropPeer(peerId)) this.#changed.add(taskId)
    this.#uploads.releaseWhere(a => a.requester === peerId || a.source === peerId)
    this.#uploads.forget(peerId)
    for (const taskId of this.#claims.dropRequester(peerId)) this.#changed.add(taskId)
    this.#waits.dropRequester(peerId)
    return existed
  }

  /** Drops a task's holders, in-flight work and quarantines (its digests are void). */
  #dropTaskSwarm (taskId: string): void {
    this.#holdings.dropTask(taskId)
    this.#taskQuarantine.delete(taskId)
    this.#uploads.releaseWhere(a => a.taskId === taskId)
    this.#claims.dropTask(taskId)
    this.#waits.dropTask(taskId)
  }
}
