import { pieceRange, type PieceLayout, type PieceSource } from '@damselfly/proto'
import type { Swarm, TransferResult } from '../scheduler/swarm.js'
import type { EventQueue } from './event-queue.js'
import type { Host, Network, Transfer } from './links.js'

/** Mirrors the dfclient's `PEER_UPLOAD_CAP` (packages/dfclient/src/download/rank-sources.ts). */
const PEER_UPLOAD_CAP = 4
/** The dfclient's pause before a piece whose every source failed is tried again, per round. */
const ROUND_BACKOFF_MS = 200
/** The dfclient's pause after an early long-poll answer without news (availability-poll.ts). */
const EARLY_REPLY_PAUSE_MS = 200

/** A simulated supernode: the real scheduler, its seed's network interface, and whether it is up. */
export interface SupernodeSim {
  readonly id: string
  readonly swarm: Swarm
  readonly host: Host
  alive: boolean
}

/** What a simulated dfclient needs from the simulation around it. */
export interface PeerWorld {
  readonly q: EventQueue
  readonly net: Network
  readonly layout: PieceLayout
  readonly taskId: string
  /** The dfclient's fetch concurrency and read-ahead window (blob-download.ts defaults: 4 and 64). */
  readonly concurrency: number
  readonly window: number
  /** From a fetch decision to the first byte on the wire (stream setup). */
  readonly latencyMs: number
  /** The dfclient's report batching (PieceReporter's flush delay). */
  readonly reportDelayMs: number
  /** Deliver pending reports before each poll (see `poll`). */
  readonly flushBeforePoll: boolean
  /** Ask as the real dfclient does (`from` + `window`) rather than `startableOnly`. */
  readonly windowPolls: boolean
  /** The supernode owning the task for this peer now (the adapter's sticky owner); undefined: none up. */
  owner: (peer: SimPeer) => SupernodeSim | undefined
  /** The host behind a source peer id, undefined when it is down. */
  host: (peerId: string) => Host | undefined
  /** The peer polled and could start nothing for these window pieces: wake it when they may have a source. */
  waitFor: (peer: SimPeer, indices: readonly number[]) => void
  /** `source` finished an upload: one of its slots is free. */
  slotFreed: (source: Host) => void
  /** The supernode now knows the peer holds these pieces. */
  reported: (peer: SimPeer, indices: readonly number[]) => void
  /** The peer verified its last piece. */
  finished: (peer: SimPeer) => void
  readonly counters: { polls: number, fetches: number, failedFetches: number }
}

interface Fetch {
  index: number
  sources: PieceSource[]
  tried: number
  source: string
  startedAt: number
  transfer?: Transfer | undefined
}

/**
 * One dfclient pulling the blob, modelled on packages/dfclient/src/download/piece-scheduler.ts: it
 * reads in order (the client consumes each piece as soon as it is verified), fetches up to
 * `concurrency` pieces inside the `window` ahead of its cursor, in the order of the supernode's latest
 * reply, from the first source of each (after the dfclient's own re-ranking, `dfclientOrder`), and
 * reports results and held pieces in batches. It asks for a fresh plan (`piecesRequested` with `from`
 * = its cursor) whenever something that changes its answer happens: one of its fetches ended, its own
 * report reached the supernode, a piece it waits for got a source (`PeerWorld.waitFor`), or its wait
 * for a source runs out. A real dfclient long-polls and is woken by any change of the task; waking
 * only the peers a change concerns is the simulation's one shortcut (it keeps a 10,000-peer herd from
 * costing 10,000 polls per reported piece), and it never starts a fetch a real one would not.
 */
export class SimPeer {
  readonly id: string
  readonly host: Host
  readonly arrival: number
  readonly #w: PeerWorld
  readonly #held: Uint8Array
  #heldCount = 0
  #cursor = 0
  readonly #inflight = new Map<number, Fetch>()
  /** Latest sources per piece (kept across replies, as the dfclient's `#avail`) and the latest reply's order. */
  readonly #avail = new Map<number, PieceSource[]>()
  /** Per piece: 1 while `#avail` names a source other than this peer (what `#pump` asks per window piece). */
  readonly #sourced: Uint8Array
  /** Per piece: 1 while it is in `#inflight`. */
  readonly #busy: Uint8Array
  /** Position of each piece in the latest reply: valid where `#orderGen` equals `#replies` (typed arrays: `#pump` reads them per window piece per poll). */
  readonly #order: Float64Array
  readonly #orderGen: Float64Array
  #replies = 0
  readonly #ownLoad = new Map<string, number>()
  readonly #failed = new Set<string>()
  /** Per piece: not retried before this time (after a round whose every source failed). */
  readonly #notBefore: Float64Array
  #pendingHeld: number[] = []
  #pendingResults: TransferResult[] = []
  #flushAt: number | undefined
  /** Bumped by every flush: a scheduled flush that an earlier one overtook does nothing. */
  #flushGen = 0
  #pollQueued = false
  #waitTimerAt = Infinity
  /** Bumped by every poll: wait registrations of an older generation are stale. */
  waitGen = 0
  doneAt: number | undefined
  /** Set while the peer's download talks to a supernode (registered); cleared when that one died. */
  registeredWith: SupernodeSim | undefined

  constructor (id: string, host: Host, arrival: number, world: PeerWorld) {
    this.id = id
    this.host = host
    this.arrival = arrival
    this.#w = world
    this.#held = new Uint8Array(world.layout.pieceCount)
    this.#order = new Float64Array(world.layout.pieceCount)
    this.#orderGen = new Float64Array(world.layout.pieceCount).fill(-1)
    this.#notBefore = new Float64Array(world.layout.pieceCount)
    this.#sourced = new Uint8Array(world.layout.pieceCount)
    this.#busy = new Uint8Array(world.layout.pieceCount)
  }

  holds (index: number): boolean { return this.#held[index] === 1 }

  /** Every piece this peer holds (what it re-reports to a new owner). */
  heldPieces (): number[] {
    const out: number[] = []
    for (let i = 0; i < this.#held.length; i++) if (this.#held[i] === 1) out.push(i)
    return out
  }

  get done (): boolean { return this.doneAt !== undefined }

  /** Fetches under way. */
  get fetching (): number { return this.#inflight.size }

  /** The piece the reader needs next. */
  get cursor (): number { return this.#cursor }

  /** Asks for a plan at the current instant (coalesced with other wake-ups of this instant). */
  wake (): void {
    if (this.#pollQueued || this.done) return
    this.#pollQueued = true
    this.#w.q.after(0, () => { this.#pollQueued = false; this.poll() })
  }

  /** One `piecesRequested` at the owner, then fetches started in the reply's order. */
  poll (): void {
    const w = this.#w
    const sn = w.owner(this)
    if (this.done || sn === undefined) return
    // The download's adapter delivers pending reports before it polls (so the plan counts the
    // fetches that just ended as ended, and the pieces they brought as held).
    if (w.flushBeforePoll && this.#flushAt !== undefined) this.#flush(false)
    this.waitGen++
    w.counters.polls++
    const plans = sn.swarm.piecesRequested({ taskId: w.taskId, requester: this.id, from: this.#cursor, ...(w.windowPolls ? { window: w.window } : { startableOnly: true }) })
    const gen = ++this.#replies
    for (let k = 0; k < plans.length; k++) {
      const p = plans[k] as (typeof plans)[number]
      this.#avail.set(p.index, p.sources)
      this.#sourced[p.index] = this.#hasSource(p.sources) ? 1 : 0
      this.#order[p.index] = k
      this.#orderGen[p.index] = gen
    }
    this.#pump()
    this.#afterPoll(sn)
  }

  /** Records where the peer waits, and when its wait for a source runs out. */
  #afterPoll (sn: SupernodeSim): void {
    const w = this.#w
    if (this.done || this.#inflight.size >= w.concurrency) return
    const waiting: number[] = []
    const end = Math.min(w.layout.pieceCount, this.#cursor + w.window)
    for (let i = this.#cursor; i < end; i++) if (this.#held[i] === 0 && this.#busy[i] === 0) waiting.push(i)
    if (waiting.length > 0) w.waitFor(this, waiting)
    const ms = sn.swarm.msUntilWaitLimit(w.taskId, this.id)
    // A wait that already ran out (the reply came just before its end): the real dfclient's long-poll
    // then answers at once and the client pauses before the next (availability-poll.ts).
    const at = ms === undefined ? Infinity : Math.floor(w.q.now) + Math.max(ms, ms === 0 ? EARLY_REPLY_PAUSE_MS : 1)
    if (at < this.#waitTimerAt) {
      this.#waitTimerAt = at
      w.q.at(at, () => {
        if (this.#waitTimerAt !== at) return
        this.#waitTimerAt = Infinity
        this.wake()
      })
    }
  }

  /** piece-scheduler.ts `#pump`: window pieces with a source, in the latest reply's order. */
  #pump (): void {
    const w = this.#w
    const now = w.q.now
    const end = Math.min(w.layout.pieceCount, this.#cursor + w.window)
    const candidates: number[] = []
    for (let i = this.#cursor; i < end; i++) {
      if (this.#held[i] === 1 || this.#busy[i] === 1 || (this.#notBefore[i] as number) > now) continue
      if (this.#sourced[i] === 1) candidates.push(i)
    }
    const gen = this.#replies
    const order = (i: number): number => this.#orderGen[i] === gen ? this.#order[i] as number : Infinity
    if (candidates.length > 1) candidates.sort((x, y) => order(x) - order(y) || x - y)
    for (const i of candidates) {
      if (this.#inflight.size >= w.concurrency) break
      this.#start({ index: i, sources: this.#ranked(i), tried: 0, source: '', startedAt: now })
    }
  }

  /** Whether sources name anyone but this peer (what `#ranked` would keep). */
  #hasSource (sources: readonly PieceSource[]): boolean {
    for (const src of sources) if (src.peerId !== this.id) return true
    return false
  }

  #ranked (index: number): PieceSource[] {
    return dfclientOrder(this.#avail.get(index) ?? [], this.id, id => this.#ownLoad.get(id) ?? 0, this.#failed)
  }

  /** Tries the fetch's next source, after the stream set-up latency. */
  #start (f: Fetch): void {
    const w = this.#w
    const source = f.sources[f.tried]
    if (source === undefined) { this.#round(f); return }
    f.source = source.peerId
    f.startedAt = w.q.now
    this.#inflight.set(f.index, f)
    this.#busy[f.index] = 1
    this.#ownLoad.set(source.peerId, (this.#ownLoad.get(source.peerId) ?? 0) + 1)
    w.counters.fetches++
    w.q.after(w.latencyMs, () => {
      if (this.#inflight.get(f.index) !== f) return
      const host = w.host(source.peerId)
      if (host === undefined) { this.#failedFetch(f); return }
      f.transfer = w.net.start(host, this.host, pieceRange(w.layout, f.index).length, t => { this.#landed(f, t) })
    })
  }

  /** The fetch's source died under it (the simulation cancelled the transfer). */
  sourceDied (source: string): void {
    for (const f of [...this.#inflight.values()]) if (f.source === source) this.#failedFetch(f)
  }

  #failedFetch (f: Fetch): void {
    const w = this.#w
    if (f.transfer !== undefined) w.net.cancel(f.transfer)
    w.counters.failedFetches++
    this.#release(f)
    this.#failed.add(f.source)
    this.#queueResult({ index: f.index, sourcePeerId: f.source, ok: false, code: 'DF_ERR_PEER_UNREACHABLE' })
    f.tried++
    f.transfer = undefined
    this.#start(f)
  }

  /** Every source of this round failed: the piece waits a little and is planned afresh. */
  #round (f: Fetch): void {
    this.#inflight.delete(f.index)
    this.#busy[f.index] = 0
    this.#notBefore[f.index] = this.#w.q.now + ROUND_BACKOFF_MS
    this.#w.q.after(ROUND_BACKOFF_MS, () => { this.wake() })
  }

  #release (f: Fetch): void {
    this.#inflight.delete(f.index)
    this.#busy[f.index] = 0
    const n = (this.#ownLoad.get(f.source) ?? 1) - 1
    if (n > 0) this.#ownLoad.set(f.source, n)
    else this.#ownLoad.delete(f.source)
  }

  #landed (f: Fetch, t: Transfer): void {
    const w = this.#w
    this.#release(f)
    w.slotFreed(t.src)
    if (this.#held[f.index] === 0) {
      this.#held[f.index] = 1
      // Its sources are of no more use (a real dfclient keeps them; a 10,000-peer run cannot).
      this.#avail.delete(f.index)
      this.#sourced[f.index] = 0
      this.#heldCount++
      while (this.#cursor < this.#held.length && this.#held[this.#cursor] === 1) this.#cursor++
      this.#queueResult({ index: f.index, sourcePeerId: f.source, ok: true, bytes: t.bytes, durationMs: Math.round(w.q.now - f.startedAt) })
      this.#pendingHeld.push(f.index)
      this.#scheduleFlush()
    }
    if (this.#heldCount === this.#held.length) {
      this.doneAt = w.q.now
      w.finished(this)
      return
    }
    this.poll()
  }

  #queueResult (r: TransferResult): void {
    this.#pendingResults.push(r)
    this.#scheduleFlush()
  }

  /** PieceReporter: reports made within `reportDelayMs` of the first go out together, holdings first. */
  #scheduleFlush (): void {
    if (this.#flushAt !== undefined) return
    const w = this.#w
    const at = this.#flushAt = w.q.now + w.reportDelayMs
    const gen = this.#flushGen
    w.q.at(at, () => { if (this.#flushGen === gen) this.#flush() })
  }

  #flush (thenPoll = true): void {
    const w = this.#w
    this.#flushAt = undefined
    this.#flushGen++
    const held = this.#pendingHeld
    const results = this.#pendingResults
    this.#pendingHeld = []
    this.#pendingResults = []
    const sn = w.owner(this)
    if (sn === undefined) return
    if (held.length > 0 && sn.swarm.piecesHeld({ taskId: w.taskId, peerId: this.id, indices: held })) w.reported(this, held)
    if (results.length > 0) sn.swarm.pieceResultsReported({ taskId: w.taskId, requester: this.id, results })
    // Its own report changed the task: a real dfclient's long-poll returns on it.
    if (thenPoll && !this.done) this.wake()
  }

  /** Re-reports every held piece to its (new) owner, as the announcer does after a re-announce. */
  reportHeld (): void {
    const held = this.heldPieces()
    if (held.length === 0) return
    this.#pendingHeld.push(...held)
    this.#scheduleFlush()
  }
}

/**
 * The dfclient's source order (packages/dfclient/src/download/rank-sources.ts): the supernode's order,
 * except that when the seed is first, the first listed peer that our own fetches do not saturate and
 * that has not failed us goes before it.
 */
export function dfclientOrder (sources: readonly PieceSource[], self: string, ownLoad: (peerId: string) => number, failed: ReadonlySet<string>): PieceSource[] {
  const list = sources.filter(s => s.peerId !== self)
  const first = list[0]
  if (first === undefined || !first.seed) return list
  const k = list.findIndex(s => !s.seed && !failed.has(s.peerId) && ownLoad(s.peerId) < PEER_UPLOAD_CAP)
  if (k <= 0) return list
  return [list[k] as PieceSource, ...list.slice(0, k), ...list.slice(k + 1)]
}
