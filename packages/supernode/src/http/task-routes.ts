import { Router, type Request, type Response } from 'express'
import type { Logger } from 'pino'
import type { z } from 'zod'
import {
  dfError, digestString, piecesQuery, pieceResultsRequest, registerTaskRequest, reportPiecesRequest, taskIdFor, parseDigest,
  type PieceAvailability, type PieceResult, type PiecesResponse, type TaskInfo
} from '@damselfly/proto'
import type { Swarm } from '../scheduler/swarm.js'
import { taskInfoOf, type RegisterInput } from '../seed/back-to-source.js'
import type { TaskBoard } from '../tasks/task-board.js'
import type { TaskRecord } from '../tasks/task-store.js'
import { validate } from './validate.js'

export interface TaskRoutesDeps {
  logger: Logger
  board: TaskBoard
  swarm: Swarm
  register: (input: RegisterInput) => Promise<TaskInfo>
  /** Aborts at shutdown, ending long-polls early. */
  shutdown: AbortSignal
  /** Told every batch of transfer results a peer reported (metrics count the delivered bytes). */
  onPieceResults?: ((e: { taskId: string, requester: string, results: readonly PieceResult[] }) => void) | undefined
}

/** `/tasks`: register, long-poll piece availability, report held pieces and transfer results. */
export function taskRoutes (deps: TaskRoutesDeps): Router {
  const router = Router()

  router.post('/tasks', async (req, res) => {
    const body = validate(registerTaskRequest, req.body, 'body')
    // Only `authorization` is forwarded upstream; header names are case-insensitive.
    const authorization = Object.entries(body.headers ?? {}).find(([k]) => k.toLowerCase() === 'authorization')?.[1]
    res.locals.taskId = body.digest
    res.json(await deps.register({ digest: body.digest, url: body.url, authorization }))
  })

  router.get('/tasks/:digest/pieces', async (req, res) => {
    const taskId = taskIdFor(parseDigest(validate(digestString, req.params.digest, 'params')))
    const query = validate(piecesQuery, req.query, 'query')
    res.locals.taskId = taskId
    res.locals.peerId = query.peerId
    if (deps.board.record(taskId) === undefined) throw dfError('DF_ERR_TASK_UNKNOWN', `no task for ${taskId}`)
    if (query.since !== undefined && query.waitMs !== undefined) {
      // A client that goes away must not keep its poll (and timer) alive.
      const gone = new AbortController()
      const onClose = (): void => { gone.abort() }
      res.on('close', onClose)
      // A requester told "no source yet" for a piece is answered when its wait runs out (the seed is
      // then offered to it), not after the whole waitMs: nothing else would wake it at that moment.
      const waitLimit = query.peerId === undefined ? undefined : deps.swarm.msUntilWaitLimit(taskId, query.peerId)
      const waitMs = waitLimit === undefined ? query.waitMs : Math.min(query.waitMs, waitLimit)
      try {
        await deps.board.waitForChange(taskId, query.since, waitMs, AbortSignal.any([gone.signal, deps.shutdown]))
      } finally {
        res.off('close', onClose)
      }
      if (gone.signal.aborted) return
    }
    const task = await deps.board.get(taskId)
    if (task === undefined) throw dfError('DF_ERR_TASK_UNKNOWN', `no task for ${taskId}`)
    // From here to res.json nothing awaits: the plan (and the assignments it records) matches the digests sent.
    const pieces: PieceAvailability[] = []
    for (const plan of deps.swarm.piecesRequested({ taskId, requester: query.peerId, from: query.from, window: query.window })) {
      const digest = task.pieces.get(plan.index)
      if (digest !== undefined) pieces.push({ index: plan.index, digest, sources: plan.sources })
    }
    const reply: PiecesResponse = { task: taskInfoOf(task.record), version: task.version, pieces }
    res.json(reply)
  })

  /** The common start of a peer's report about a task: validated body, known task and peer, in-range indices. */
  function peerReport<T extends { peerId: string }> (req: Request, res: Response, schema: z.ZodType<T>, indices: (body: T) => number[]): { taskId: string, body: T, record: ReturnType<typeof knownTaskAndPeer> } {
    const taskId = taskIdFor(parseDigest(validate(digestString, req.params.digest, 'params')))
    const body = validate(schema, req.body, 'body')
    res.locals.taskId = taskId
    res.locals.peerId = body.peerId
    const record = knownTaskAndPeer(deps, taskId, body.peerId)
    checkIndices(record, indices(body))
    return { taskId, body, record }
  }

  router.post('/tasks/:digest/pieces', (req, res) => {
    const { taskId, body, record } = peerReport(req, res, reportPiecesRequest, b => b.pieces)
    if (record.state !== 'failed') deps.swarm.piecesHeld({ taskId, peerId: body.peerId, indices: body.pieces })
    res.status(204).end()
  })

  router.post('/tasks/:digest/piece-results', (req, res) => {
    const { taskId, body } = peerReport(req, res, pieceResultsRequest, b => b.results.map(r => r.index))
    const quarantined = deps.swarm.pieceResultsReported({ taskId, requester: body.peerId, results: body.results })
    deps.onPieceResults?.({ taskId, requester: body.peerId, results: body.results })
    for (const q of quarantined) {
      deps.logger.warn({ taskId, peerId: q.peerId, reporter: body.peerId, scope: q.scope }, 'peer served a piece that failed verification; quarantined')
    }
    res.status(204).end()
  })

  return router
}

function knownTaskAndPeer (deps: TaskRoutesDeps, taskId: string, peerId: string): TaskRecord {
  const record = deps.board.record(taskId)
  if (record === undefined) throw dfError('DF_ERR_TASK_UNKNOWN', `no task for ${taskId}`)
  if (deps.swarm.peer(peerId) === undefined) throw dfError('DF_ERR_PEER_UNKNOWN', `peer ${peerId} is not announced (or expired); announce again`)
  return record
}

function checkIndices (record: TaskRecord, indices: readonly number[]): void {
  const bad = indices.filter(i => i >= record.pieceCount)
  if (bad.length > 0) {
    throw dfError('DF_ERR_BAD_REQUEST', `piece index out of range 0..${record.pieceCount - 1}: ${bad.slice(0, 10).join(', ')}`, { details: { pieceCount: record.pieceCount } })
  }
}
