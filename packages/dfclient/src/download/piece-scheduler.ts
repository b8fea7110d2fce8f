import { performance } from 'node:perf_hooks'
import { dfError, isDfError, pieceRange, type PieceAvailability, type PieceLayout, type PieceResult, type PieceSource } from '@damselfly/proto'
import type { PieceCache } from '../storage/piece-cache.js'
import { pollAvailability } from './availability-poll.js'
import { PieceHandoff, type PieceLocation } from './piece-handoff.js'
import type { DownloadEvents, PieceFetcher, TaskDirectory } from './ports.js'
import { rankSources } from './rank-sources.js'
import { PieceTimes, type SlowPieceLimits } from './slow-piece.js'
import { STARVED_MS, StarvationWatch } from './starvation.js'

export interface PieceSchedulerInit {
  digest: string
  layout: PieceLayout
  selfPeerId: string
  /** Inclusive piece index range this reader needs. */
  first: number
  last: number
  /** Pieces fetched at once; also the number of piece receive buffers (the download's RAM bound). */
  concurrency: number
  /** How far ahead of the reader's cursor fetches may run, in pieces. */
  window: number
  pollWaitMs: number
  /** Rounds of "every source failed" a piece may go through before P2P is given up. */
  maxRounds: number
  /** Consecutive failed availability polls tolerated before P2P is given up. */
  maxPollFailures: number
  /** When the piece the reader waits for is retried elsewhere; default `SLOW_PIECE_LIMITS`. */
  slowPiece?: SlowPieceLimits
  /** How long the reader may wait for a piece nobody is fetching before P2P is given up; default `STARVED_MS` (starvation.ts). */
  starvedMs?: number
}

export interface PieceSchedulerComponents {
  tasks: TaskDirectory
  fetcher: PieceFetcher
  cache: PieceCache
  events?: DownloadEvents
}

export type { PieceLocation } from './piece-handoff.js'

/** A piece fetch under way: its current source and since when, and its slow-piece retry if any. */
interface Running {
  /** Aborts this fetch only (the retry won). */
  abort: AbortController
  source: string | undefined
  since: number
  /** Bytes of the piece received from the current source so far, of `size`. */
  received: number
  size: number
  /** The retry from another source, once started (one per fetch). */
  retry?: { source: string, abort: AbortController }
}

export { PEER_UPLOAD_CAP, rankSources } from './rank-sources.js'

/**
 * Drives the pieces of one blob range: long-polls availability, fetches up to `concurrency` missing
 * pieces inside a window ahead of the reader (in the order the supernode's reply lists them: rarest
 * first), and stages each verified piece in the cache file, from where the reader streams it (page
 * cache) when its turn comes. RAM therefore holds only the `concurrency` receive buffers, which are
 * reused piece after piece. Staged pieces are committed (made durable) and reported behind the reader.
 * Every fetch attempt's outcome is reported to the supernode's scheduler.
 * All state changes happen synchronously between awaits; `stop()` aborts everything in flight.
 */
export class PieceScheduler {
  readonly #init: PieceSchedulerInit
  readonly #c: PieceSchedulerComponents
  readonly #abort = new AbortController()
  readonly #avail = new Map<number, PieceAvailability>()
  /** Position of each piece in the latest reply (the supernode's fetch order). */
  readonly #order = new Map<number, number>()
  readonly #handoff: PieceHandoff
  readonly #inflight = new Set<number>()
  readonly #running = new Map<number, Running>()
  /** Pieces whose verified bytes are being staged: the other of two racing fetches drops its copy. */
  readonly #landing = new Set<number>()
  /** Pieces with a slow-piece retry in flight. */
  readonly #retrying = new Set<number>()
  readonly #times: PieceTimes
  #slowTimer: NodeJS.Timeout | undefined
  readonly #rounds = new Map<number, number>()
  readonly #notBefore = new Map<number, number>()
  readonly #pending = new Set<number>()
  /** Our own fetches in flight per source peer, and the peers that failed us in this download. */
  readonly #ownLoad = new Map<string, number>()
  readonly #failedSources = new Set<string>()
  /** Free receive buffers of `layout.pieceSize` bytes. */
  readonly #pool: Uint8Array[] = []
  #cursor: number
  #polling = false
  #error: Error | undefined
  #timer: NodeJS.Timeout | undefined
  readonly #starvation: StarvationWatch

  constructor (init: PieceSchedulerInit, components: PieceSchedulerComponents, signal: AbortSignal) {
    this.#init = init
    this.#c = components
    this.#cursor = init.first
    this.#times = new PieceTimes(init.slowPiece)
    this.#handoff = new PieceHandoff({ digest: init.digest, layout: init.layout, cache: components.cache, tasks: components.tasks, signal: this.#abort.signal, onFetched: i => { this.#pending.delete(i) } })
    this.#starvation = new StarvationWatch(init.starvedMs ?? STARVED_MS, () => {
      this.#fail(dfError('DF_ERR_PIECE_UNAVAILABLE', `no source served piece ${this.#cursor} of ${init.digest} for ${Math.round((init.starvedMs ?? STARVED_MS) / 1000)} s`))
    })
    if (signal.aborted) this.#abort.abort(signal.reason)
    else signal.addEventListener('abort', () => { this.stop() }, { once: true })
  }

  /** Loads what the cache already holds and starts polling. */
  async start (): Promise<void> {
    const { digest, first, last } = this.#init
    const cached = await this.#c.cache.get(digest)
    for (let i = first; i <= last; i++) {
      if (cached?.pieces.has(i) === true || this.#c.cache.hasPieceBytes(digest, i)) this.#handoff.alreadyCached(i)
      else this.#pending.add(i)
    }
    this.#startPolling()
  }

  stop (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#slowTimer !== undefined) clearTimeout(this.#slowTimer)
    this.#slowTimer = undefined
    this.#starvation.stop()
    this.#abort.abort(new Error('piece scheduler stopped'))
    this.#fail(dfError('DF_ERR_SHUTTING_DOWN', 'download stopped'))
    this.#pool.length = 0
    this.#handoff.dropMemory()
  }

  /**
   * Resolves once every commit started so far has finished (durable and reported, or failed).
   * The reader awaits this before its last byte, so a completed response means a cached blob.
   */
  async settled (): Promise<void> {
    await this.#handoff.settled()
  }

  /**
   * Waits until piece `index` is verified and readable; the reader calls this in ascending order.
   * Resolves to `undefined` when the piece is in the cache, or to its bytes when only RAM has it.
   */
  async piece (index: number): Promise<PieceLocation> {
    this.#cursor = index
    if (this.#handoff.ready(index)) {
      const location = this.#handoff.take(index)
      this.#pump()
      return location
    }
    // After a failure, pieces still in flight may complete; anything else will not.
    if (this.#error !== undefined && !this.#inflight.has(index)) throw this.#error
    const promise = this.#handoff.wait(index)
    this.#pump()
    return await promise
  }

  #startPolling (): void {
    if (this.#polling || this.#pending.size === 0) return
    this.#polling = true
    void this.#pollLoop().finally(() => { this.#polling = false })
  }

  async #pollLoop (): Promise<void> {
    await pollAvailability({
      tasks: this.#c.tasks,
      digest: this.#init.digest,
      pollWaitMs: this.#init.pollWaitMs,
      maxPollFailures: this.#init.maxPollFailures,
      signal: this.#abort.signal,
      from: () => this.#cursor,
      window: this.#init.window,
      wanted: () => this.#error === undefined && this.#pending.size > 0,
      onReply: (res) => {
        this.#order.clear()
        for (let k = 0; k < res.pieces.length; k++) {
          const p = res.pieces[k] as PieceAvailability
          this.#avail.set(p.index, p)
          this.#order.set(p.index, k)
        }
        if (res.task.state === 'failed') {
          this.#fail(dfError('DF_ERR_TASK_FAILED', `task ${this.#init.digest} failed at the supernode`))
          return false
        }
        this.#pump()
        return true
      },
      onGiveUp: (err) => { this.#fail(err) }
    })
  }

  #pump (): void {
    if (this.#error !== undefined || this.#abort.signal.aborted) return
    const { digest, last, window, concurrency, selfPeerId } = this.#init
    const now = Date.now()
    let earliest = Infinity
    const end = Math.min(last, this.#cursor + window - 1)
    const candidates: number[] = []
    for (let i = this.#cursor; i <= end; i++) {
      if (!this.#pending.has(i) || this.#inflight.has(i) || this.#landing.has(i) || this.#retrying.has(i)) continue
      // Another download of the same blob (a second client) may have staged it meanwhile.
      if (this.#c.cache.hasPieceBytes(digest, i)) { this.#pending.delete(i); this.#handoff.readable(i); continue }
      const a = this.#avail.get(i)
      if (a === undefined || rankSources(a.sources, selfPeerId).length === 0) continue
      const nb = this.#notBefore.get(i) ?? 0
      if (nb > now) { earliest = Math.min(earliest, nb); continue }
      candidates.push(i)
    }
    // Inside the window, start fetches in the supernode's order (rarest first), not by index.
    candidates.sort((x, y) => (this.#order.get(x) ?? Infinity) - (this.#order.get(y) ?? Infinity) || x - y)
    for (const i of candidates) {
      if (this.#inflight.size >= concurrency) break
      void this.#fetch(i, this.#avail.get(i) as PieceAvailability)
    }
    if (earliest !== Infinity && this.#timer === undefined) {
      this.#timer = setTimeout(() => { this.#timer = undefined; this.#pump() }, earliest - now)
    }
    this.#checkSlow()
    this.#checkStarved()
  }

  /** Gives P2P up when the reader has waited `starvedMs` for a piece no fetch is working on. */
  #checkStarved (): void {
    const i = this.#cursor
    this.#starvation.update(this.#handoff.waiting(i) && !this.#inflight.has(i) && !this.#landing.has(i) && !this.#retrying.has(i))
  }

  /**
   * Retries the piece the reader waits for from another source once its current source has been
   * slow with it (see `slow-piece.ts`); otherwise arms a timer for the moment it would count as slow.
   */
  #checkSlow (): void {
    if (this.#slowTimer !== undefined) { clearTimeout(this.#slowTimer); this.#slowTimer = undefined }
    const index = this.#cursor
    const run = this.#running.get(index)
    if (run === undefined || run.retry !== undefined || run.source === undefined || !this.#handoff.waiting(index)) return
    const now = performance.now()
    const wait = this.#times.msUntilSlow(now - run.since, run.received / run.size)
    if (wait > 0) {
      this.#slowTimer = setTimeout(() => { this.#slowTimer = undefined; this.#checkSlow() }, Math.ceil(wait))
      return
    }
    const a = this.#avail.get(index)
    const load = (peerId: string): number => this.#ownLoad.get(peerId) ?? 0
    const other = a === undefined ? undefined : rankSources(a.sources, this.#init.selfPeerId, load, this.#failedSources).find(s => s.peerId !== run.source)
    // No other source yet: the next availability reply calls #pump, which checks again.
    if (other === undefined) return
    void this.#retrySlow(index, run, other, a as PieceAvailability, now - run.since)
  }

  async #retrySlow (index: number, run: Running, source: PieceSource, a: PieceAvailability, slowMs: number): Promise<void> {
    const abort = new AbortController()
    run.retry = { source: source.peerId, abort }
    this.#retrying.add(index)
    try {
      await this.#retryFrom(index, run, source, a, slowMs, abort)
    } finally {
      this.#retrying.delete(index)
      this.#pump()
    }
  }

  async #retryFrom (index: number, run: Running, source: PieceSource, a: PieceAvailability, slowMs: number, abort: AbortController): Promise<void> {
    const { digest, layout } = this.#init
    this.#c.events?.slowPieceRetry?.({ index, slowPeerId: run.source ?? '', peerId: source.peerId, slowMs: Math.round(slowMs), typicalMs: Math.round(this.#times.typicalMs ?? 0) })
    const signal = AbortSignal.any([this.#abort.signal, abort.signal])
    const expected = { size: pieceRange(layout, index).length, digest: a.digest }
    // Its own buffer: the first fetch is still receiving into its pooled one.
    const buffer = Buffer.allocUnsafeSlow(Math.min(layout.pieceSize, layout.size))
    const began = performance.now()
    this.#ownLoad.set(source.peerId, (this.#ownLoad.get(source.peerId) ?? 0) + 1)
    let bytes: Uint8Array
    try {
      bytes = await this.#c.fetcher.fetchPiece(source, { taskId: digest, index }, expected, signal, buffer)
    } catch (err) {
      if (!signal.aborted) this.#sourceFailed(index, source.peerId, err)
      return
    } finally {
      this.#ownLoad.set(source.peerId, (this.#ownLoad.get(source.peerId) ?? 0) - 1)
    }
    if (this.#landing.has(index) || !this.#pending.has(index)) return // the first fetch won after all
    run.abort.abort(new Error('a retry from another source delivered the piece first'))
    this.#landed(index, source, bytes, performance.now() - began)
    await this.#handoff.stage(index, a.digest, bytes)
    this.#landing.delete(index)
  }

  /** A verified piece arrived: reported, timed and counted. The caller stages it next. */
  #landed (index: number, source: PieceSource, bytes: Uint8Array, ms: number): void {
    this.#landing.add(index)
    this.#times.record(ms)
    this.#result({ index, sourcePeerId: source.peerId, ok: true, bytes: bytes.byteLength, durationMs: Math.round(ms) })
    this.#c.events?.pieceReceived?.(bytes.byteLength, source.seed ? 'supernode' : 'peer')
  }

  #sourceFailed (index: number, peerId: string, err: unknown): Error {
    const error = asError(err)
    this.#failedSources.add(peerId)
    const code = isDfError(err) ? err.code : 'DF_ERR_PROTOCOL'
    this.#result({ index, sourcePeerId: peerId, ok: false, code })
    const info = { index, peerId, error }
    // Only a SHA-256 mismatch is a verify failure; a short or broken stream is a source failure.
    if (code === 'DF_ERR_PIECE_DIGEST_MISMATCH') this.#c.events?.verifyFailure?.(info)
    else this.#c.events?.sourceFailure?.(info)
    return error
  }

  async #fetch (index: number, a: PieceAvailability): Promise<void> {
    const { digest, layout, selfPeerId } = this.#init
    const run: Running = { abort: new AbortController(), source: undefined, since: performance.now(), received: 0, size: pieceRange(layout, index).length }
    const signal = AbortSignal.any([this.#abort.signal, run.abort.signal])
    this.#inflight.add(index)
    this.#running.set(index, run)
    const expected = { size: pieceRange(layout, index).length, digest: a.digest }
    // A blob smaller than a piece needs no piece-sized buffer (config blobs are a few KiB).
    const buffer = this.#pool.pop() ?? Buffer.allocUnsafeSlow(Math.min(layout.pieceSize, layout.size))
    let lastError: Error = dfError('DF_ERR_PIECE_UNAVAILABLE', `piece ${index} of ${digest}: no source`)
    let pooled = true
    try {
      const load = (peerId: string): number => this.#ownLoad.get(peerId) ?? 0
      for (const source of rankSources(a.sources, selfPeerId, load, this.#failedSources)) {
        // The slow-piece retry already works on this source.
        if (run.retry?.source === source.peerId) continue
        let bytes: Uint8Array
        const began = performance.now()
        run.source = source.peerId
        run.since = began
        run.received = 0
        this.#ownLoad.set(source.peerId, load(source.peerId) + 1)
        try {
          bytes = await this.#c.fetcher.fetchPiece(source, { taskId: digest, index }, expected, signal, buffer, n => { run.received += n })
        } catch (err) {
          if (signal.aborted) return
          lastError = this.#sourceFailed(index, source.peerId, err)
          continue
        } finally {
          this.#ownLoad.set(source.peerId, load(source.peerId) - 1)
        }
        if (this.#landing.has(index) || !this.#pending.has(index)) return // the retry won
        run.retry?.abort.abort(new Error('the first fetch delivered the piece'))
        this.#landed(index, source, bytes, performance.now() - began)
        pooled = await this.#handoff.stage(index, a.digest, bytes)
        this.#landing.delete(index)
        return
      }
      // Every source failed, but the slow-piece retry is still running: it decides this round.
      if (this.#retrying.has(index)) return
      const rounds = (this.#rounds.get(index) ?? 0) + 1
      this.#rounds.set(index, rounds)
      if (rounds >= this.#init.maxRounds) {
        this.#fail(dfError('DF_ERR_PIECE_UNAVAILABLE', `piece ${index} of ${digest}: every source failed ${rounds} times: ${lastError.message}`, { cause: lastError }))
        return
      }
      this.#notBefore.set(index, Date.now() + 200 * rounds)
    } finally {
      if (pooled && !signal.aborted) this.#pool.push(buffer)
      this.#inflight.delete(index)
      this.#running.delete(index)
      if (this.#error !== undefined) this.#handoff.reject(index, this.#error)
      this.#pump()
    }
  }

  #result (r: PieceResult): void {
    try {
      this.#c.tasks.reportPieceResults?.(this.#init.digest, [r])
    } catch {
      // Reporting is advisory; it never fails a pull.
    }
  }

  /**
   * Stops starting fetches. Readers waiting on pieces not in flight get `err` now; pieces in flight
   * may still land (the reader takes them, then gets `err` at the first piece that cannot come).
   */
  #fail (err: Error): void {
    if (this.#error !== undefined) return
    this.#error = err
    this.#handoff.rejectAll(err, index => this.#inflight.has(index) && !this.#abort.signal.aborted)
  }
}

function asError (err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
