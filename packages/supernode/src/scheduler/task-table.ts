import { BASE_PIECE_SIZE, type TaskState } from '@damselfly/proto'

/** A task as the swarm knows it: only pieces whose digest the seed published are offered. */
export interface TaskEntry {
  readonly state: TaskState
  readonly pieceCount: number
  /** Bytes per piece (the last may be shorter): what one transfer counts against byte budgets. */
  readonly pieceSize: number
  readonly published: ReadonlySet<number>
}

interface Entry {
  state: TaskState
  pieceCount: number
  pieceSize: number
  published: Set<number>
}

/** A task's layout as its events carry it; `pieceSize` defaults to the base size (4 MiB). */
export interface TaskLayout {
  taskId: string
  pieceCount: number
  pieceSize?: number | undefined
}

/**
 * The swarm's tasks. Task states mirror the durable task record:
 * ```
 *   (none) ──taskStarted──▶ running ──taskSucceeded──▶ succeeded
 *                           running ──taskFailed─────▶ failed      (holders and in-flight dropped)
 *   succeeded | failed ──taskStarted──▶ running   (fetched again)
 *   any ──taskForgotten──▶ (none)                 (holders kept: see Swarm.taskForgotten)
 *   (none) ──taskLoaded (startup)──▶ succeeded | failed
 * ```
 * A task that is not known or failed offers nothing. Dropping holders and in-flight work is the
 * swarm's business, not this table's.
 */
export class TaskTable {
  readonly #tasks = new Map<string, Entry>()

  get (taskId: string): TaskEntry | undefined {
    return this.#tasks.get(taskId)
  }

  state (taskId: string): TaskState | undefined {
    return this.#tasks.get(taskId)?.state
  }

  countByState (): Record<TaskState, number> {
    const counts: Record<TaskState, number> = { running: 0, succeeded: 0, failed: 0 }
    for (const t of this.#tasks.values()) counts[t.state]++
    return counts
  }

  loaded (e: TaskLayout & { state: TaskState }): void {
    const published = new Set<number>()
    if (e.state === 'succeeded') for (let i = 0; i < e.pieceCount; i++) published.add(i)
    this.#tasks.set(e.taskId, { state: e.state, pieceCount: e.pieceCount, pieceSize: e.pieceSize ?? BASE_PIECE_SIZE, published })
  }

  /** Returns true when the task was known with a different layout. */
  started (e: TaskLayout): boolean {
    const old = this.#tasks.get(e.taskId)
    const pieceSize = e.pieceSize ?? BASE_PIECE_SIZE
    this.#tasks.set(e.taskId, { state: 'running', pieceCount: e.pieceCount, pieceSize, published: new Set() })
    return old !== undefined && (old.pieceCount !== e.pieceCount || old.pieceSize !== pieceSize)
  }

  digestPublished (e: { taskId: string, index: number }): void {
    const t = this.#tasks.get(e.taskId)
    if (t !== undefined && t.state !== 'failed' && e.index < t.pieceCount) t.published.add(e.index)
  }

  succeeded (taskId: string): void {
    const t = this.#tasks.get(taskId)
    if (t === undefined) return
    t.state = 'succeeded'
    for (let i = 0; i < t.pieceCount; i++) t.published.add(i)
  }

  failed (taskId: string): void {
    const t = this.#tasks.get(taskId)
    if (t === undefined) return
    t.state = 'failed'
    t.published.clear()
  }

  forget (taskId: string): void {
    this.#tasks.delete(taskId)
  }
}
