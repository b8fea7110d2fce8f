import type { PreheatJob } from './job.js'
import type { PreheatJobStore } from './ports.js'

/** In-memory PreheatJobStore for tests; same contract as LevelPreheatJobStore (see job-store.test.ts). */
export class MemoryPreheatJobStore implements PreheatJobStore {
  readonly #jobs = new Map<number, string>()

  async open (): Promise<void> {}
  async close (): Promise<void> {}

  async put (job: PreheatJob): Promise<void> {
    // Stored as JSON, like LevelDB: callers can never share an object with the store.
    this.#jobs.set(job.id, JSON.stringify(job))
  }

  async get (id: number): Promise<PreheatJob | undefined> {
    const v = this.#jobs.get(id)
    return v === undefined ? undefined : JSON.parse(v) as PreheatJob
  }

  async delete (id: number): Promise<void> {
    this.#jobs.delete(id)
  }

  async list (): Promise<PreheatJob[]> {
    return [...this.#jobs.entries()].sort(([a], [b]) => a - b).map(([, v]) => JSON.parse(v) as PreheatJob)
  }
}
