/**
 * When a piece counts as slow, so the download retries it from another source while the first
 * transfer keeps running (a hedged request: whichever verifies first wins, the other is aborted).
 *
 * Only the piece the reader is waiting for is ever retried, and at most once per fetch: a client
 * streams in order, so that piece is the whole pull's tail, while a slow piece further ahead costs
 * nothing until the reader reaches it (then it is the waited-for piece). This bounds the extra bytes
 * to one piece at a time per download.
 *
 * A piece is slow when its current source has been sending it for `SLOW_PIECE_FACTOR` times the
 * typical piece time of this download (moving average of successful fetches), and never before
 * `SLOW_PIECE_MIN_MS`. Why 4×: piece times vary ~2× with the sources' load (a busy holder runs 4
 * uploads at once), so 4× flags a source that is stalled or far slower than its peers, not one that
 * is merely busy. Why 2 s at least: below that a retry costs more than it saves (a new stream and
 * a second copy of the piece). Before any piece has completed there is no typical time:
 * `SLOW_PIECE_UNKNOWN_MS` then, several times a 4 MiB piece on a slow (100 Mbit/s) link.
 */
export const SLOW_PIECE_FACTOR = 4
export const SLOW_PIECE_MIN_MS = 2_000
export const SLOW_PIECE_UNKNOWN_MS = 8_000

/** How soon a slow transfer that is about to finish is looked at again. */
const RECHECK_MS = 250

/** Weight of the newest successful fetch in the typical piece time. */
const EWMA_WEIGHT = 0.2

/** The slow-piece thresholds (tests shorten them). */
export interface SlowPieceLimits {
  factor: number
  minMs: number
  unknownMs: number
}

export const SLOW_PIECE_LIMITS: SlowPieceLimits = { factor: SLOW_PIECE_FACTOR, minMs: SLOW_PIECE_MIN_MS, unknownMs: SLOW_PIECE_UNKNOWN_MS }

/** The typical time of a successful piece fetch in one download, and the slow threshold it implies. */
export class PieceTimes {
  readonly #limits: SlowPieceLimits
  #typicalMs: number | undefined

  constructor (limits: SlowPieceLimits = SLOW_PIECE_LIMITS) {
    this.#limits = limits
  }

  record (ms: number): void {
    this.#typicalMs = this.#typicalMs === undefined ? ms : (1 - EWMA_WEIGHT) * this.#typicalMs + EWMA_WEIGHT * ms
  }

  get typicalMs (): number | undefined {
    return this.#typicalMs
  }

  /**
   * How much longer to let the current source work before retrying the piece elsewhere (0 = now),
   * given how long it has been at it and the fraction of the piece it has sent. Past the slow
   * threshold a transfer is still left alone while it would finish sooner than a fresh fetch
   * typically takes: aborting a nearly complete piece would throw away most of a copy.
   */
  msUntilSlow (elapsedMs: number, fraction: number): number {
    const slow = this.slowAfterMs() - elapsedMs
    if (slow > 0) return slow
    const remainingMs = fraction <= 0 ? Infinity : elapsedMs * (1 - fraction) / fraction
    const fresh = this.#typicalMs ?? this.#limits.minMs
    return remainingMs > fresh ? 0 : Math.max(RECHECK_MS, remainingMs / 2)
  }

  /** How long one source may take with a piece before it is retried elsewhere. */
  slowAfterMs (): number {
    const l = this.#limits
    return this.#typicalMs === undefined ? l.unknownMs : Math.max(l.minMs, l.factor * this.#typicalMs)
  }
}
