export interface SeedPaceInit {
  slowSeedTransfers: number
  seedTransferEwma: number
  maxStretchedWaitMs: number
}

/**
 * How long a seed transfer typically takes, from the durations requesters report, and the time limits
 * stretched to match: a loaded seed must not make its waiters give up on a copy still on its way
 * (why, and by how much: `SLOW_SEED_TRANSFERS` in `constants.ts`).
 */
export class SeedPace {
  readonly #init: SeedPaceInit
  /** Moving average of reported successful seed transfer durations (ms); undefined before the first. */
  #typicalMs: number | undefined

  constructor (init: SeedPaceInit) {
    this.#init = init
  }

  /** A successful seed transfer's reported duration; peers do not check theirs, so junk is skipped. */
  record (durationMs: number | undefined): void {
    if (durationMs === undefined || !Number.isFinite(durationMs) || durationMs < 0) return
    const a = this.#init.seedTransferEwma
    this.#typicalMs = this.#typicalMs === undefined ? durationMs : a * durationMs + (1 - a) * this.#typicalMs
  }

  /** `base`, stretched to `slowSeedTransfers` typical seed transfers when those are slow, never beyond `maxStretchedWaitMs`. */
  stretched (base: number): number {
    const typical = this.#typicalMs
    if (typical === undefined) return base
    return Math.max(base, Math.min(this.#init.maxStretchedWaitMs, Math.round(this.#init.slowSeedTransfers * typical)))
  }
}
