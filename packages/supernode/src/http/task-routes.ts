import { Router } from 'express'
import {
  dfError, digestString, piecesQuery, registerTaskRequest, reportPiecesRequest, taskIdFor, parseDigest,
  type PeerAddress, type PiecesResponse, type TaskInfo
} from '@damselfly/proto'
import type { PeerRegistry } from '../peers/peer-registry.js'
import { pieceAvailability } from '../scheduler/availability.js'
import type { HandoutLedger } from '../scheduler/piece-sources.js'
import { taskInfoOf, type RegisterInput } from '../seed/back-to-source.js'
import type { TaskBoard } from '../tasks/task-board.js'
import { validate } from './validate.js'

export interface TaskRoutesDeps {
  board: TaskBoard
  peers: PeerRegistry
  ledger: HandoutLedger
  register: (input: RegisterInput) => Promise<TaskInfo>
  self: () => PeerAddress
  now: () => number
  /** Aborts at shutdown, ending long-polls early. */
  shutdown: AbortSignal
}

/** `/tasks`: register, long-poll piece availability, report held pieces. */
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
    if (deps.board.record(taskId) === undefined) throw dfError('DF_ERR_TASK_UNKNOWN', `no task for ${taskId}`)
    if (query.since !== undefined && query.waitMs !== undefined) {
      // A client that goes away must not keep its poll (and timer) alive.
      const gone = new AbortController()
      const onClose = (): void => { gone.abort() }
      res.on('close', onClose)
      try {
        await deps.board.waitForChange(taskId, query.since, query.waitMs, AbortSignal.any([gone.signal, deps.shutdown]))
      } finally {
        res.off('close', onClose)
      }
      if (gone.signal.aborted) return
    }
    const task = await deps.board.get(taskId)
    if (task === undefined) throw dfError('DF_ERR_TASK_UNKNOWN', `no task for ${taskId}`)
    const reply: PiecesResponse = {
      task: taskInfoOf(task.record),
      version: task.version,
      pieces: pieceAvailability({ task, peers: deps.peers, ledger: deps.ledger, seed: deps.self(), requester: query.peerId, now: deps.now() })
    }
    res.json(reply)
  })

  router.post('/tasks/:digest/pieces', (req, res) => {
    const taskId = taskIdFor(parseDigest(validate(digestString, req.params.digest, 'params')))
    const body = validate(reportPiecesRequest, req.body, 'body')
    res.locals.taskId = taskId
    const record = deps.board.record(taskId)
    if (record === undefined) throw dfError('DF_ERR_TASK_UNKNOWN', `no task for ${taskId}`)
    if (deps.peers.get(body.peerId) === undefined) throw dfError('DF_ERR_PEER_UNKNOWN', `peer ${body.peerId} is not announced (or expired); announce again`)
    const bad = body.pieces.filter(i => i >= record.pieceCount)
    if (bad.length > 0) {
      throw dfError('DF_ERR_BAD_REQUEST', `piece index out of range 0..${record.pieceCount - 1}: ${bad.slice(0, 10).join(', ')}`, { details: { pieceCount: record.pieceCount } })
    }
    if (record.state !== 'failed') deps.peers.addHoldings(body.peerId, taskId, body.pieces)
    res.status(204).end()
  })

  return router
}
