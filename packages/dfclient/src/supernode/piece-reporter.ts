import type { Logger } from 'pino'
import { API_LIMITS, isDfError, type PieceResult } from '@damselfly/proto'
import type { SupernodeClient } from './client.js'

/** The part of the supernode client the reporter uses (a fake in tests). */
export type ReportClient = Pick<SupernodeClient, 'reportPieces' | 'reportPieceResults'>

export interface PieceReporterOptions {
  /** How long reports may wait to be batched (the flush interval). */
  delayMs?: number
  /** Queued transfer results per task that trigger a flush at once (and the most sent per POST). */
  maxBatch?: number
  /**
   * Transfer results kept per task while the supernode does not answer; older ones are dropped first
   * (results are advisory and stale ones are worth little).
   */
  maxQueuedResults?: number
}

/** Delay before reports that failed are sent again (a supernode that is down is not hammered). */
const RETRY_MS = 5_000

/** How soon a held-piece report for a task its supernode does not know yet is sent again (`awaitTaskMs`). */
const AWAIT_TASK_RETRY_MS = 2_000

/** API errors after which a retry cannot succeed (the task or peer is gone, or the request is refused). */
const FINAL_CODES = new Set(['DF_ERR_TASK_UNKNOWN', 'DF_ERR_PEER_UNKNOWN', 'DF_ERR_BAD_REQUEST'])

/**
 * Batches what this peer tells the supernode about tasks: "I now hold piece N of task D" and "my
 * transfer of piece N from peer P went so" (`piece-results`). Reports made within `delayMs` of each
 * other go out in one POST per task and kind; a task with `maxBatch` results waiting flushes at once.
 * Failed held-piece reports are retried with a later flush (a re-announce re-reports the cache
 * anyway); failed result reports are retried while their bounded queue keeps them. Reporting never
 * throws to its callers, so it can never fail a pull.
 */
export class PieceReporter {
  readonly #client: ReportClient
  readonly #peerId: string
  readonly #logger: Logger
  readonly #delayMs: number
  readonly #maxBatch: number
  readonly #maxQueuedResults: number
  readonly #held = new Map<string, Set<number>>()
  /** digest → until when a DF_ERR_TASK_UNKNOWN answer to its held-piece report is retried (see `report`). */
  readonly #awaitTask = new Map<string, number>()
  readonly #results = new Map<string, PieceResult[]>()
  #timer: NodeJS.Timeout | undefined
  #timerDue = Infinity
  #flushing: Promise<void> | undefined
  #again = false
  #stopped = false

  constructor (client: ReportClient, peerId: string, logger: Logger, options: PieceReporterOptions | number = {}) {
    const o = typeof options === 'number' ? { delayMs: options } : options
    this.#client = client
    this.#peerId = peerId
    this.#logger = logger
    this.#delayMs = o.delayMs ?? 50
    this.#maxBatch = Math.min(o.maxBatch ?? 256, API_LIMITS.maxPieceResults)
    this.#maxQueuedResults = Math.max(this.#maxBatch, o.maxQueuedResults ?? 1_000)
  }

  /**
   * Queues "this peer holds these pieces". With `awaitTaskMs`, a supernode that does not know the task
   * yet (DF_ERR_TASK_UNKNOWN) is asked again until that much time has passed: a task that moved to a
   * new owner exists there only once a download re-registers it, and the pieces this peer already
   * holds are worth reporting then.
   */
  report (digest: string, indexes: readonly number[], delayMs = this.#delayMs, options: { awaitTaskMs?: number } = {}): void {
    if (options.awaitTaskMs !== undefined) this.#awaitTask.set(digest, Math.max(this.#awaitTask.get(digest) ?? 0, Date.now() + options.awaitTaskMs))
    let set = this.#held.get(digest)
    if (set === undefined) { set = new Set(); this.#held.set(digest, set) }
    for (const i of indexes) set.add(i)
    this.#schedule(delayMs)
  }

  /** Queues transfer results of one task (never throws). */
  reportResults (digest: string, results: readonly PieceResult[], delayMs = this.#delayMs): void {
    this.#queueResults(digest, results, delayMs, true)
  }

  #queueResults (digest: string, results: readonly PieceResult[], delayMs: number, flushWhenFull: boolean): void {
    if (results.length === 0) return
    let queue = this.#results.get(digest)
    if (queue === undefined) { queue = []; this.#results.set(digest, queue) }
    for (const r of results) queue.push(r)
    if (queue.length > this.#maxQueuedResults) queue.splice(0, queue.length - this.#maxQueuedResults)
    this.#schedule(flushWhenFull && queue.length >= this.#maxBatch ? 0 : delayMs)
  }

  /**
   * Sends what is queued for `digest` (with everything else queued) before the caller goes on: a
   * download delivers its reports before it polls, so the plan it gets counts its finished fetches as
   * finished and the pieces they brought as held. Resolves at once when nothing is queued for it.
   */
  async deliver (digest: string): Promise<void> {
    if (!this.#held.has(digest) && !this.#results.has(digest)) return
    await this.flush()
  }

  /** Sends everything queued now. Resolves when done; never rejects. */
  async flush (): Promise<void> {
    if (this.#flushing !== undefined) {
      // Whatever was queued after the running flush took its batch goes in one more round.
      this.#again = true
      await this.#flushing
      return
    }
    this.#clearTimer()
    this.#flushing = this.#send()
    try { await this.#flushing } finally { this.#flushing = undefined }
    if (this.#again) {
      this.#again = false
      if (this.#held.size > 0 || this.#results.size > 0) this.#schedule(this.#delayMs)
    }
  }

  stop (): void {
    this.#stopped = true
    this.#clearTimer()
  }

  #schedule (delayMs: number): void {
    if (this.#stopped) return
    const due = Date.now() + delayMs
    if (this.#timer !== undefined && this.#timerDue <= due) return
    this.#clearTimer()
    this.#timerDue = due
    this.#timer = setTimeout(() => { this.#timer = undefined; this.#timerDue = Infinity; void this.flush() }, delayMs)
    this.#timer.unref?.()
  }

  #clearTimer (): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    this.#timerDue = Infinity
  }

  async #send (): Promise<void> {
    const held = [...this.#held.entries()]
    this.#held.clear()
    const results = [...this.#results.entries()]
    this.#results.clear()
    // Holdings first: they change which sources other peers are offered.
    for (const [digest, set] of held) {
      const pieces = [...set].sort((a, b) => a - b)
      try {
        await this.#client.reportPieces(digest, this.#peerId, pieces)
        this.#awaitTask.delete(digest)
      } catch (err) {
        this.#logger.debug({ taskId: digest, err: message(err) }, 'piece report failed; will retry')
        const awaiting = isDfError(err) && err.code === 'DF_ERR_TASK_UNKNOWN' && (this.#awaitTask.get(digest) ?? 0) > Date.now()
        if (awaiting || !isFinal(err)) this.report(digest, pieces, awaiting ? AWAIT_TASK_RETRY_MS : RETRY_MS)
        else this.#awaitTask.delete(digest)
      }
    }
    for (const [digest, queue] of results) {
      for (let from = 0; from < queue.length; from += this.#maxBatch) {
        const batch = queue.slice(from, from + this.#maxBatch)
        try {
          await this.#client.reportPieceResults(digest, this.#peerId, batch)
        } catch (err) {
          this.#logger.debug({ taskId: digest, err: message(err) }, 'piece results report failed')
          if (!isFinal(err)) this.#queueResults(digest, queue.slice(from), RETRY_MS, false)
          break
        }
      }
    }
  }
}

function isFinal (err: unknown): boolean {
  return isDfError(err) && FINAL_CODES.has(err.code)
}

function message (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
