import { pieceUnits } from '@damselfly/proto'

export interface SeedPaceInit {
  slowSeedTransfers: number
  seedTransferEwma: number
  maxStretchedWaitMs: number
  /** The fetch budget in 4 MiB units: pieces up to this size move at the pace the limits assume. */
  activePieces: number
}

/**
 * How long a seed transfer typically takes, from the durations requesters report, and a task's time
 * limits stretched to match: a loaded seed must not make its waiters give up on a copy still on its
 * way (why, and by how much: `SLOW_SEED_TRANSFERS` in `constants.ts`).
 *
 * The limits are tuned for pieces up to the fetch budget (16 MiB: a stream of one moves what four
 * 4 MiB streams did). A task of larger pieces gets them scaled by its piece size ÷ 16 MiB: one stream
 * at a time cannot move such a piece faster. Measured with `npm run simulate` (1,000 peers, 3 GiB = 48
 * pieces of 64 MiB): unscaled, waiters gave up on busy holders and piled onto a few, 2.10× the bound;
 * scaled (×4), 1.18×. Durations are recorded at the 16 MiB scale, so a large-piece task does not
 * stretch the others' limits.
 */
export class SeedPace {
  readonly #init: SeedPaceInit
  readonly #pieceSizeOf: (taskId: string) => number | undefined
  /** Moving average of reported successful seed transfer durations (ms, at the 16 MiB scale); undefined before the first. */
  #typicalMs: number | undefined

  constructor (init: SeedPaceInit, pieceSizeOf: (taskId: string) => number | undefined) {
    this.#init = init
    this.#pieceSizeOf = pieceSizeOf
  }

  /** A successful seed transfer's reported duration; peers do not check theirs, so junk is skipped. */
  record (taskId: string, durationMs: number | undefined): void {
    if (durationMs === undefined || !Number.isFinite(durationMs) || durationMs < 0) return
    const ms = durationMs / this.#scale(taskId)
    const a = this.#init.seedTransferEwma
    this.#typicalMs = this.#typicalMs === undefined ? ms : a * ms + (1 - a) * this.#typicalMs
  }

  /**
   * `base`, stretched to `slowSeedTransfers` typical seed transfers when those are slow (never beyond
   * `maxStretchedWaitMs`), then scaled for the task's piece size.
   */
  limit (base: number, taskId: string | undefined): number {
    const typical = this.#typicalMs
    const stretched = typical === undefined ? base : Math.max(base, Math.min(this.#init.maxStretchedWaitMs, Math.round(this.#init.slowSeedTransfers * typical)))
    return Math.round(stretched * this.#scale(taskId))
  }

  #scale (taskId: string | undefined): number {
    const pieceSize = taskId === undefined ? undefined : this.#pieceSizeOf(taskId)
    return pieceSize === undefined ? 1 : Math.max(1, pieceUnits(pieceSize) / this.#init.activePieces)
  }
}
