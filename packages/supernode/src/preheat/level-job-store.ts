import { Level } from 'level'
import type { PreheatJob } from './job.js'
import type { PreheatJobStore } from './ports.js'

/*
 * Key layout (its own LevelDB under `<dataDir>/preheat`, string keys, JSON values):
 *   j!<id, 15 digits>   → PreheatJob; zero-padded so keys sort by id
 * A separate database rather than keys in the task store's: the task store owns its LevelDB, and
 * preheat jobs have nothing to do in its transactions.
 */
const jobKey = (id: number): string => `j!${String(id).padStart(15, '0')}`

/** PreheatJobStore on LevelDB (`level`, i.e. classic-level on Node). */
export class LevelPreheatJobStore implements PreheatJobStore {
  readonly #db: Level<string, string>

  /** No I/O here; `open()` opens the database (creating the directory). */
  constructor (location: string) {
    this.#db = new Level<string, string>(location, { valueEncoding: 'utf8' })
  }

  async open (): Promise<void> {
    await this.#db.open()
  }

  async close (): Promise<void> {
    await this.#db.close()
  }

  async put (job: PreheatJob): Promise<void> {
    // Synchronous writes: a job reported SUCCESS must not come back RUNNING after a power cut.
    await this.#db.put(jobKey(job.id), JSON.stringify(job), { sync: true })
  }

  async get (id: number): Promise<PreheatJob | undefined> {
    const v = await this.#db.get(jobKey(id))
    return v === undefined ? undefined : JSON.parse(v) as PreheatJob
  }

  async delete (id: number): Promise<void> {
    await this.#db.del(jobKey(id))
  }

  async list (): Promise<PreheatJob[]> {
    const out: PreheatJob[] = []
    for await (const value of this.#db.values({ gt: 'j!', lt: 'j~' })) out.push(JSON.parse(value) as PreheatJob)
    return out
  }
}
