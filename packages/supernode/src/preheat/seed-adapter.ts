import { dfError, parseDigest, taskIdFor, type TaskInfo } from '@damselfly/proto'
import type { RegisterInput } from '../seed/back-to-source.js'
import type { TaskBoard } from '../tasks/task-board.js'
import type { BlobSeeder } from './ports.js'

/** How long one wait on the board lasts before the task is read again (a safety net, not a poll rate). */
const WAIT_SLICE_MS = 30_000

/**
 * The BlobSeeder port over the seed itself: `register` is the very function the peer API's
 * `POST /tasks` calls (BackToSource's single-flight register), and completion is read off the task
 * board, so a preheat and a pull of the same blob share one upstream fetch whichever comes first.
 */
export function createBlobSeeder (deps: { register: (input: RegisterInput) => Promise<TaskInfo>, board: TaskBoard }): BlobSeeder {
  return {
    register: async (request, signal) => {
      signal.throwIfAborted()
      // BackToSource takes no signal: the fetch is shared and outlives any one caller.
      await deps.register(request)
    },
    settled: async (digest, signal) => {
      const taskId = taskIdFor(parseDigest(digest))
      for (;;) {
        signal.throwIfAborted()
        const task = await deps.board.get(taskId)
        if (task === undefined) throw dfError('DF_ERR_TASK_UNKNOWN', `the seed forgot task ${taskId} while it was being preheated`)
        if (task.record.state === 'succeeded') return
        if (task.record.state === 'failed') throw dfError('DF_ERR_TASK_FAILED', `the seed's fetch of ${taskId} failed (upstream error or digest mismatch; the supernode log has the cause)`)
        await deps.board.waitForChange(taskId, task.version, WAIT_SLICE_MS, signal)
      }
    },
    bytesHeld: async (digest) => {
      const task = await deps.board.get(taskIdFor(parseDigest(digest)))
      if (task === undefined || task.record.state === 'failed') return 0
      if (task.record.state === 'succeeded') return task.record.size
      return Math.min(task.record.size, task.pieces.size * task.record.pieceSize)
    }
  }
}
