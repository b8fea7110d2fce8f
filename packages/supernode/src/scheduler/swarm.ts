import type { TaskState } from '@damselfly/proto'
import { Holdings } from './holdings.js'
import { Membership } from './membership.js'
import { peerStateOf, Standing, type PeerRecord, type PeerState } from './peer-state.js'
import { planPieces, type PlanState } from './plan-pieces.js'
import { SeedClaims, SourceWaits } from './seed-fanout.js'
import { SeedPace } from './seed-pace.js'
import { DIGEST_MISMATCH_CODE, resolveOptions, type Options, type PiecePlan, type QuarantineStarted, type SwarmComponents, type SwarmInit, type TransferResult } from './swarm-types.js'
import { TaskTable, type TaskLayout } from './task-table.js'
import { UploadLedger } from './upload-ledger.js'

export { DIGEST_MISMATCH_CODE } from './swarm-types.js'
export type { PiecePlan, QuarantineStarted, SourceAddress, SwarmComponents, SwarmInit, TransferResult } from './swarm-types.js'

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
 * **Peer states** are in `peer-state.ts` (membership: `membership.ts`). **Task states** mirror the
 * durable task record (`task-table.ts`). Only pieces whose digest the seed published are offered; a
 * task that is not known or failed offers nothing.
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
 * successes, `seed-pace.ts`) when those are slow, up to `MAX_STRETCHED_WAIT_MS`. A claim is renewed by its requester's polls and ends with the requester's
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

export class Swarm {
  readonly #o: Options
  readonly #c: SwarmComponents
  readonly #members: Membership
  readonly #standing: Standing
  readonly #tasks = new TaskTable()
  readonly #holdings = new Holdings()
  /** taskId → peerId → end of that peer's quarantine for the task. */
  readonly #taskQuarantine = new Map<string, Map<string, number>>()
  readonly #uploads: UploadLedger
  readonly #claims = new SeedClaims()
  readonly #waits = new SourceWaits()
  readonly #changed = new Set<string>()
  #depth = 0
  readonly #seedPace: SeedPace
  /** What planning a piece request reads and records into (`plan-pieces.ts`). */
  readonly #plan: PlanState

  constructor (init: SwarmInit, components: SwarmComponents) {
    this.#o = resolveOptions(init)
    this.#c = components
    this.#seedPace = new SeedPace(this.#o, taskId => this.#tasks.get(taskId)?.pieceSize)
    this.#members = new Membership({ peerTtlMs: this.#o.peerTtlMs, maxUploadsPerPeer: this.#o.maxUploadsPerPeer })
    this.#uploads = new UploadLedger({
      assignmentTtlMs: this.#o.assignmentTtlMs,
      rateWindowMs: this.#o.rateWindowMs,
      onInFlight: (source, inFlight) => { this.#members.trackFree(source, inFlight) }
    })
    this.#standing = new Standing({ strikesToQuarantine: this.#o.globalQuarantineStrikes, strikeWindowMs: this.#o.strikeWindowMs, quarantineMs: this.#o.globalQuarantineMs })
    this.#plan = {
      o: this.#o,
      holdings: this.#holdings,
      uploads: this.#uploads,
      claims: this.#claims,
      waits: this.#waits,
      standing: this.#standing,
      taskQuarantine: this.#taskQuarantine,
      members: this.#members,
      seed: () => this.#c.seed(),
      peer: peerId => this.peer(peerId),
      sourceWaitLimitMs: taskId => this.sourceWaitLimitMs(taskId),
      seedClaimTtlMs: taskId => this.seedClaimTtlMs(taskId)
    }
  }

  // ---- queries (no state changes) ----

  get peerTtlMs (): number { return this.#o.peerTtlMs }

  /** The peer if it is announced and not silent for longer than the TTL. */
  peer (peerId: string): PeerRecord | undefined {
    const p = this.#members.get(peerId)
    return p !== undefined && this.#c.now() - p.lastSeen <= this.#o.peerTtlMs ? p : undefined
  }

  /** `left` covers both "never announced" and "gone" (its record was dropped). */
  peerState (peerId: string): PeerState | 'left' {
    const p = this.#members.get(peerId)
    return p === undefined ? 'left' : peerStateOf(p, this.#c.now(), this.#o.peerTtlMs, this.#standing)
  }

  /** Live peers (the `damselfly_peers` gauge). */
  peerCount (): number {
    return this.#members.liveCount(this.#c.now())
  }

  taskState (taskId: string): TaskState | undefined {
    return this.#tasks.state(taskId)
  }

  /** Known tasks by state (the `damselfly_tasks` gauge). */
  tasksByState (): Record<TaskState, number> {
    return this.#tasks.countByState()
  }

  /** Live holders of a piece, quarantined or not. */
  holders (taskId: string, index: number): string[] {
    return [...this.#holdings.holders(taskId, index)].map(p => p.id).filter(id => this.peer(id) !== undefined)
  }

  /** Uploads handed out to `source` and not yet finished or expired. */
  inFlight (source: string): number {
    return this.#uploads.inFlight(source, this.#c.now())
  }

  /** The source's upload rate (bytes/s) over the rate window, from reported successes. */
  uploadRate (source: string): number {
    return this.#uploads.rate(source, this.#c.now())
  }

  /** Copies of every live peer's record, for read-only views (the dashboard). */
  livePeers (): PeerRecord[] {
    return this.#members.liveCopies(this.#c.now())
  }

  /** Peers quarantined for the task now, with the end of each quarantine, for read-only views (the dashboard). */
  taskQuarantines (taskId: string): Array<{ peerId: string, until: number }> {
    const now = this.#c.now()
    return [...this.#taskQuarantine.get(taskId) ?? []].filter(([, until]) => until > now).map(([peerId, until]) => ({ peerId, until }))
  }

  /**
   * Milliseconds until the requester's oldest "no source yet" for a piece of the task runs out (0 when
   * it already has), or undefined when it waits for none: its long-poll should end by then.
   */
  msUntilWaitLimit (taskId: string, requester: string): number | undefined {
    const since = this.#waits.earliest(taskId, requester)
    return since === undefined ? undefined : Math.max(0, since + this.sourceWaitLimitMs(taskId) - this.#c.now())
  }

  /**
   * The limits in force for a task: the configured ones, stretched when seed transfers are slow and
   * scaled for pieces larger than the fetch budget (`seed-pace.ts`).
   */
  sourceWaitLimitMs (taskId?: string): number { return this.#seedPace.limit(this.#o.sourceWaitLimitMs, taskId) }
  seedClaimTtlMs (taskId?: string): number { return this.#seedPace.limit(this.#o.seedClaimTtlMs, taskId) }

  // ---- events ----

  /** A peer announced itself (idempotent; holdings survive a re-announce of a live peer). */
  peerAnnounced (e: { peerId: string, addrs: readonly string[], hostname: string, version?: string | undefined }): void {
    this.#event(now => {
      if (this.#members.has(e.peerId) && this.peer(e.peerId) === undefined) this.#removePeer(e.peerId)
      this.#members.announced({ peerId: e.peerId, addrs: [...e.addrs], hostname: e.hostname, ...(e.version === undefined ? {} : { version: e.version }), lastSeen: now })
      if (this.#uploads.failures(e.peerId, now) > 0) this.#members.mayHaveFailed(e.peerId)
      this.#uploads.describe(e.peerId, e.addrs)
      this.#members.trackFree(e.peerId, this.#uploads.charged(e.peerId))
    })
  }

  /** A heartbeat; false when the peer is unknown or already silent past its TTL (it must announce again). */
  peerHeartbeat (peerId: string): boolean {
    return this.#event(now => {
      const seen = this.#members.heartbeat(peerId, now)
      if (seen === 'silent') this.#removePeer(peerId)
      return seen === 'live'
    })
  }

  /** A peer left: its record, holdings and in-flight work go at once. */
  peerLeft (peerId: string): boolean {
    return this.#event(() => this.#removePeer(peerId))
  }

  /** Applies `peerExpired` to every silent peer and prunes lapsed standing; returns the expired ids. */
  expireSilentPeers (): string[] {
    return this.#event(now => {
      const expired = [...this.#members.silent(now)].map(p => p.id)
      for (const peerId of expired) this.#removePeer(peerId)
      this.#uploads.expire(now)
      this.#claims.prune(now)
      this.#waits.prune(id => this.#members.has(id))
      this.#standing.prune(now)
      for (const [taskId, q] of this.#taskQuarantine) {
        for (const [peerId, until] of q) if (until <= now) q.delete(peerId)
        if (q.size === 0) this.#taskQuarantine.delete(taskId)
      }
      const seedId = this.#c.seed().peerId
      this.#uploads.prune(id => id === seedId || this.#members.has(id))
      return expired
    })
  }

  /** A task known from the durable store at startup. */
  taskLoaded (e: TaskLayout & { state: TaskState }): void {
    this.#event(() => { this.#tasks.loaded(e) })
  }

  /** A task (re)started fetching from upstream; no piece is published yet. */
  taskStarted (e: TaskLayout): void {
    this.#event(() => {
      // Same digest means same layout; a different count means the old holdings cannot be trusted.
      if (this.#tasks.started(e)) this.#dropTaskSwarm(e.taskId)
    })
  }

  /** The seed hashed piece `index` and published its digest: it can now be offered. */
  pieceDigestPublished (e: { taskId: string, index: number }): void {
    this.#event(() => { this.#tasks.digestPublished(e) })
  }

  taskSucceeded (e: { taskId: string }): void {
    this.#event(() => { this.#tasks.succeeded(e.taskId) })
  }

  /** The blob failed its digest or the fetch broke: its piece digests, and so every holding, are void. */
  taskFailed (e: { taskId: string }): void {
    this.#event(() => {
      this.#tasks.failed(e.taskId)
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
      this.#tasks.forget(e.taskId)
      this.#uploads.releaseWhere(a => a.taskId === e.taskId)
      this.#claims.dropTask(e.taskId)
      this.#waits.dropTask(e.taskId)
    })
  }

  /** A live peer verified and now serves pieces of a task (`pieceHeld`, batched). */
  piecesHeld (e: { taskId: string, peerId: string, indices: readonly number[] }): boolean {
    return this.#event(now => {
      const peer = this.peer(e.peerId) === undefined ? undefined : this.#members.entry(e.peerId)
      if (peer === undefined) return false
      if (this.#tasks.state(e.taskId) === 'failed') return true
      this.#holdings.add(e.taskId, peer, e.indices)
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
  piecesRequested (e: { taskId: string, requester?: string | undefined, from?: number | undefined, window?: number | undefined, startableOnly?: boolean | undefined }): PiecePlan[] {
    return this.#event(now => {
      const t = this.#tasks.get(e.taskId)
      if (t === undefined || t.state === 'failed') return []
      this.#uploads.expire(now)
      return planPieces(this.#plan, { taskId: e.taskId, pieceCount: t.pieceCount, pieceSize: t.pieceSize, published: t.published }, e, now)
    })
  }

  /** The requester fetched and verified a piece from `source` (`bytes` feed the source's upload rate). */
  pieceTransferSucceeded (e: { taskId: string, requester: string, index: number, source: string, bytes?: number | undefined, durationMs?: number | undefined }): void {
    this.#event(now => {
      this.#uploads.release(e.taskId, e.index, e.requester)
      if (e.source === this.#c.seed().peerId) {
        // The piece arrived; its claim lasts until the requester reports holding it (or the grace ends).
        this.#claims.shorten(e.taskId, e.index, e.requester, now + this.#o.seedArrivalGraceMs, now)
        this.#seedPace.record(e.taskId, e.durationMs)
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
      this.#members.mayHaveFailed(e.source)
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

  #quarantine (taskId: string, index: number, source: string, now: number): QuarantineStarted {
    let q = this.#taskQuarantine.get(taskId)
    if (q === undefined) this.#taskQuarantine.set(taskId, q = new Map())
    q.set(source, now + this.#o.taskQuarantineMs)
    // Its copy of this piece is bad: it must not be offered again when the quarantine lapses.
    const holder = this.#members.entry(source)
    if (holder !== undefined) this.#holdings.dropPiece(taskId, index, holder)
    this.#changed.add(taskId)
    if (!this.#standing.strike(source, taskId, now)) return { peerId: source, scope: 'task' }
    for (const t of this.#holdings.tasksOf(source)) this.#changed.add(t)
    return { peerId: source, scope: 'global' }
  }

  #removePeer (peerId: string): boolean {
    // Holdings first: the member's slot is free for reuse once it is removed.
    const member = this.#members.entry(peerId)
    if (member !== undefined) for (const taskId of this.#holdings.dropPeer(member)) this.#changed.add(taskId)
    const existed = this.#members.remove(peerId)
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
