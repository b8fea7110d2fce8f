import type { TaskRecord, TaskStore } from './task-store.js'

/** In-memory TaskStore for tests; same contract as LevelTaskStore (see task-store.test.ts). */
export class MemoryTaskStore implements TaskStore {
  readonly #tasks = new Map<string, TaskRecord>()
  readonly #pieces = new Map<string, Map<number, string>>()

  async open (): Promise<void> {}
  async close (): Promise<void> {}

  async getTask (taskId: string): Promise<TaskRecord | undefined> {
    const r = this.#tasks.get(taskId)
    return r === undefined ? undefined : { ...r }
  }

  async putTask (record: TaskRecord): Promise<void> {
    this.#tasks.set(record.taskId, { ...record })
  }

  async deleteTask (taskId: string): Promise<void> {
    this.#tasks.delete(taskId)
    this.#pieces.delete(taskId)
  }

  async listTasks (): Promise<TaskRecord[]> {
    return [...this.#tasks.values()].map(r => ({ ...r }))
  }

  async putPieceDigest (taskId: string, index: number, digest: string): Promise<void> {
    let m = this.#pieces.get(taskId)
    if (m === undefined) this.#pieces.set(taskId, m = new Map())
    m.set(index, digest)
  }

  async getPieceDigests (taskId: string): Promise<Map<number, string>> {
    return new Map(this.#pieces.get(taskId))
  }

  async clearPieceDigests (taskId: string): Promise<void> {
    this.#pieces.delete(taskId)
  }
}
