import type { TaskState } from '@damselfly/proto'

/** What the supernode persists about one task (one blob, identified by its digest). */
export interface TaskRecord {
  /** The blob digest, `<algorithm>:<hex>`; also the task id. */
  taskId: string
  size: number
  pieceSize: number
  pieceCount: number
  state: TaskState
  /** Epoch milliseconds of the (latest) back-to-source start. */
  createdAt: number
}

/**
 * Durable task metadata: task records and the SHA-256 of each piece as the seed computed it.
 * Peers and their holdings are deliberately not here: they are soft state that every dfclient
 * re-announces and re-reports after a 404 heartbeat, so persisting them would only let stale holders
 * outlive a restart. Absence is `undefined`, never an exception; methods throw only on real failures.
 */
export interface TaskStore {
  open: () => Promise<void>
  close: () => Promise<void>
  getTask: (taskId: string) => Promise<TaskRecord | undefined>
  putTask: (record: TaskRecord) => Promise<void>
  /** Removes the record and all its piece digests. */
  deleteTask: (taskId: string) => Promise<void>
  listTasks: () => Promise<TaskRecord[]>
  putPieceDigest: (taskId: string, index: number, digest: string) => Promise<void>
  /** Piece digests by index; missing entries are pieces not hashed yet. */
  getPieceDigests: (taskId: string) => Promise<Map<number, string>>
  /** Drops every piece digest of a task, keeping the record. */
  clearPieceDigests: (taskId: string) => Promise<void>
}
