import { Level } from 'level'
import type { TaskRecord, TaskStore } from './task-store.js'

/*
 * Key layout (one LevelDB, string keys, JSON values):
 *   t!<taskId>            → TaskRecord
 *   p!<taskId>!<index8>   → piece digest string; the index is zero-padded so keys sort by index
 * '!' sorts below every digest character, and '~' above, which makes the range bounds below exact.
 */
const taskKey = (taskId: string): string => `t!${taskId}`
const piecePrefix = (taskId: string): string => `p!${taskId}!`
const pieceKey = (taskId: string, index: number): string => `${piecePrefix(taskId)}${String(index).padStart(8, '0')}`

/** TaskStore on LevelDB (`level`, i.e. classic-level on Node). */
export class LevelTaskStore implements TaskStore {
  readonly #db: Level<string, string>

  /** No I/O here; `open()` opens the database (creating the directory). */
  constructor (location: string) {
    this.#db = new Level<string, string>(location, { valueEncoding: 'utf8' })
  }

  get isOpen (): boolean {
    return this.#db.status === 'open'
  }

  async open (): Promise<void> {
    await this.#db.open()
  }

  async close (): Promise<void> {
    await this.#db.close()
  }

  async getTask (taskId: string): Promise<TaskRecord | undefined> {
    const v = await this.#db.get(taskKey(taskId))
    return v === undefined ? undefined : JSON.parse(v) as TaskRecord
  }

  async putTask (record: TaskRecord): Promise<void> {
    await this.#db.put(taskKey(record.taskId), JSON.stringify(record))
  }

  async deleteTask (taskId: string): Promise<void> {
    await this.clearPieceDigests(taskId)
    await this.#db.del(taskKey(taskId))
  }

  async listTasks (): Promise<TaskRecord[]> {
    const out: TaskRecord[] = []
    for await (const value of this.#db.values({ gt: 't!', lt: 't~' })) out.push(JSON.parse(value) as TaskRecord)
    return out
  }

  async putPieceDigest (taskId: string, index: number, digest: string): Promise<void> {
    await this.#db.put(pieceKey(taskId, index), digest)
  }

  async getPieceDigests (taskId: string): Promise<Map<number, string>> {
    const prefix = piecePrefix(taskId)
    const out = new Map<number, string>()
    for await (const [key, value] of this.#db.iterator({ gt: prefix, lt: `${prefix}~` })) {
      out.set(Number(key.slice(prefix.length)), value)
    }
    return out
  }

  async clearPieceDigests (taskId: string): Promise<void> {
    const prefix = piecePrefix(taskId)
    await this.#db.clear({ gt: prefix, lt: `${prefix}~` })
  }
}
