import { layoutFor, type TaskState } from '@damselfly/proto'
import type { Swarm } from '../scheduler/swarm.js'
import type { TaskRecord, TaskStore } from './task-store.js'

/** Where the board reports task changes once they are durable: the swarm scheduler's task events. */
export type TaskEvents = Pick<Swarm, 'taskLoaded' | 'taskStarted' | 'pieceDigestPublished' | 'taskSucceeded' | 'taskFailed' | 'taskForgotten'>

/** A task as the API sees it: its record, the piece digests published so far and a change counter. */
export interface LiveTask {
  readonly record: TaskRecord
  readonly pieces: ReadonlyMap<number, string>
  /** Grows on every change (piece published, holder added, state change); the long-poll cursor. */
  readonly version: number
}

interface Entry {
  record: TaskRecord
  pieces: Map<number, string> | undefined
  version: number
}

/**
 * The live view of every task, in front of the durable TaskStore. Records are all kept in memory
 * (loaded at start, small); piece digests load lazily on first use. Writes go to the store first,
 * then to memory, then wake long-pollers, so a reply never shows a digest that a crash would lose.
 *
 * Every durable change is then passed to `events` (the swarm scheduler) in the same synchronous step
 * as the memory update, so the scheduler never offers a piece the board does not list.
 *
 * Versions start at the clock's epoch milliseconds instead of 0: a dfclient polling with a `since`
 * from before a supernode restart then sees the new counter as larger and gets an answer at once
 * instead of waiting out its poll.
 */
export class TaskBoard {
  readonly #store: TaskStore
  readonly #now: () => number
  readonly #entries = new Map<string, Entry>()
  readonly #waiters = new Map<string, Set<() => void>>()
  readonly #events: TaskEvents | undefined

  constructor (store: TaskStore, now: () => number = Date.now, events?: TaskEvents) {
    this.#store = store
    this.#now = now
    this.#events = events
  }

  /**
   * Loads every record. Tasks left `running` by a previous process, and tasks cut into pieces by
   * another version's layout rule (their piece digests describe pieces today's dfclients do not
   * fetch), are returned with the reason (and dropped from the store) so the caller can delete their
   * data: the next pull of such a blob fetches it again.
   */
  async load (): Promise<Array<{ record: TaskRecord, reason: 'abandoned' | 'layout' }>> {
    const dropped: Array<{ record: TaskRecord, reason: 'abandoned' | 'layout' }> = []
    for (const record of await this.#store.listTasks()) {
      const layout = layoutFor(record.size)
      const reason = record.state === 'running' ? 'abandoned' : layout.pieceSize !== record.pieceSize || layout.pieceCount !== record.pieceCount ? 'layout' : undefined
      if (reason !== undefined) {
        dropped.push({ record, reason })
        await this.#store.deleteTask(record.taskId)
      } else {
        this.#entries.set(record.taskId, { record, pieces: undefined, version: this.#now() })
        this.#events?.taskLoaded({ taskId: record.taskId, pieceCount: record.pieceCount, pieceSize: record.pieceSize, state: record.state })
      }
    }
    return dropped
  }

  record (taskId: string): TaskRecord | undefined {
    return this.#entries.get(taskId)?.record
  }

  /** Every known task record, for read-only views (the dashboard). */
  records (): TaskRecord[] {
    return [...this.#entries.values()].map(e => e.record)
  }

  /** The task with its piece digests (loaded from the store on first use), or undefined. */
  async get (taskId: string): Promise<LiveTask | undefined> {
    const entry = this.#entries.get(taskId)
    if (entry === undefined) return undefined
    if (entry.pieces === undefined) {
      const pieces = await this.#store.getPieceDigests(taskId)
      // A concurrent begin() may have replaced the entry while we read; keep the newer one.
      if (this.#entries.get(taskId) === entry && entry.pieces === undefined) entry.pieces = pieces
    }
    const current = this.#entries.get(taskId)
    if (current === undefined) return undefined
    return { record: current.record, pieces: current.pieces ?? new Map(), version: current.version }
  }

  /** Starts (or restarts) a task as `running` with no pieces. */
  async begin (record: Omit<TaskRecord, 'state'>): Promise<void> {
    const full: TaskRecord = { ...record, state: 'running' }
    await this.#store.clearPieceDigests(record.taskId)
    await this.#store.putTask(full)
    const old = this.#entries.get(record.taskId)
    this.#entries.set(record.taskId, { record: full, pieces: new Map(), version: this.#nextVersion(old) })
    this.#events?.taskStarted({ taskId: record.taskId, pieceCount: record.pieceCount, pieceSize: record.pieceSize })
    this.#wake(record.taskId)
  }

  async publishPiece (taskId: string, index: number, digest: string): Promise<void> {
    const entry = this.#entries.get(taskId)
    if (entry === undefined) return
    await this.#store.putPieceDigest(taskId, index, digest)
    entry.pieces ??= new Map()
    entry.pieces.set(index, digest)
    entry.version = this.#nextVersion(entry)
    this.#events?.pieceDigestPublished({ taskId, index })
    this.#wake(taskId)
  }

  /** Ends a running task. A failed task keeps its record (so pollers learn it failed) but no pieces. */
  async finish (taskId: string, state: Exclude<TaskState, 'running'>): Promise<void> {
    const entry = this.#entries.get(taskId)
    if (entry === undefined) return
    const record = { ...entry.record, state }
    if (state === 'failed') await this.#store.clearPieceDigests(taskId)
    await this.#store.putTask(record)
    entry.record = record
    if (state === 'failed') entry.pieces = new Map()
    entry.version = this.#nextVersion(entry)
    if (state === 'failed') this.#events?.taskFailed({ taskId })
    else this.#events?.taskSucceeded({ taskId })
    this.#wake(taskId)
  }

  /** Forgets a task entirely (e.g. its data vanished from disk). */
  async forget (taskId: string): Promise<void> {
    await this.#store.deleteTask(taskId)
    this.#entries.delete(taskId)
    this.#events?.taskForgotten({ taskId })
    this.#wake(taskId)
  }

  /** Records a change that lives outside the board (the swarm's holders or quarantines changed). */
  touch (taskId: string): void {
    const entry = this.#entries.get(taskId)
    if (entry === undefined) return
    entry.version = this.#nextVersion(entry)
    this.#wake(taskId)
  }

  /**
   * Resolves when the task's version exceeds `since` (finishing or failing bumps it too), after
   * `waitMs`, or when `signal` aborts — whichever comes first. Never rejects. A finished task is not
   * answered at once when the caller already saw its latest version: that would turn a client's
   * long-poll loop into a busy loop.
   */
  async waitForChange (taskId: string, since: number, waitMs: number, signal?: AbortSignal): Promise<void> {
    const entry = this.#entries.get(taskId)
    if (entry === undefined || entry.version > since || waitMs <= 0) return
    await new Promise<void>(resolve => {
      let waiters = this.#waiters.get(taskId)
      if (waiters === undefined) this.#waiters.set(taskId, waiters = new Set())
      const done = (): void => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        waiters.delete(done)
        if (waiters.size === 0 && this.#waiters.get(taskId) === waiters) this.#waiters.delete(taskId)
        resolve()
      }
      const timer = setTimeout(done, waitMs)
      signal?.addEventListener('abort', done, { once: true })
      waiters.add(done)
    })
  }

  /** Wakes every long-poller, e.g. at shutdown. */
  wakeAll (): void {
    for (const taskId of [...this.#waiters.keys()]) this.#wake(taskId)
  }

  countByState (): Record<TaskState, number> {
    const counts: Record<TaskState, number> = { running: 0, succeeded: 0, failed: 0 }
    for (const { record } of this.#entries.values()) counts[record.state]++
    return counts
  }

  #nextVersion (entry: Entry | undefined): number {
    return entry === undefined ? this.#now() : Math.max(entry.version + 1, this.#now())
  }

  #wake (taskId: string): void {
    const waiters = this.#waiters.get(taskId)
    if (waiters === undefined) return
    for (const w of [...waiters]) w()
  }
}
