import { buildSnapshot, DEFAULT_LIMITS, type DashboardSnapshot, type SnapshotLimits, type SnapshotSources } from './snapshot.js'

/**
 * How old a served snapshot may be. The page polls every 2 s; at 1 s every open tab, however many,
 * costs the scheduler at most one holdings walk per second.
 */
export const SNAPSHOT_MAX_AGE_MS = 1_000

/**
 * Builds dashboard snapshots on demand and shares each one for `SNAPSHOT_MAX_AGE_MS` among every
 * viewer; concurrent requests while one is being built wait for that one.
 */
export class DashboardService {
  readonly #sources: SnapshotSources
  readonly #limits: SnapshotLimits
  #cached: { at: number, snapshot: DashboardSnapshot } | undefined
  #building: Promise<DashboardSnapshot> | undefined

  constructor (sources: SnapshotSources, limits: SnapshotLimits = DEFAULT_LIMITS) {
    this.#sources = sources
    this.#limits = limits
  }

  async snapshot (): Promise<DashboardSnapshot> {
    const now = this.#sources.now()
    if (this.#cached !== undefined && now - this.#cached.at < SNAPSHOT_MAX_AGE_MS) return this.#cached.snapshot
    this.#building ??= buildSnapshot(this.#sources, this.#limits).then(snapshot => {
      this.#cached = { at: this.#sources.now(), snapshot }
      return snapshot
    }).finally(() => { this.#building = undefined })
    return await this.#building
  }
}
