import { counterValue, type SupernodeMetrics } from '../metrics.js'
import type { TaskBoard } from '../tasks/task-board.js'
import { DashboardService } from './dashboard-service.js'
import type { SwarmReader } from './snapshot.js'

export interface DashboardComponents {
  swarm: SwarmReader
  board: TaskBoard
  metrics: SupernodeMetrics
  /** The supernode's own peer id (known once libp2p started). */
  selfPeerId: () => string
  version: string
  now: () => number
}

/** Wires the dashboard to the supernode's scheduler, task board and counters. */
export function createDashboard (c: DashboardComponents): DashboardService {
  const startedAt = c.now()
  return new DashboardService({
    swarm: c.swarm,
    tasks: () => c.board.records(),
    publishedPieces: async taskId => new Set((await c.board.get(taskId))?.pieces.keys() ?? []),
    bytes: async () => ({
      upstream: await counterValue(c.metrics.upstreamBytes),
      fromPeers: await counterValue(c.metrics.swarmPieceBytes, { from: 'peer' }),
      fromSupernode: await counterValue(c.metrics.swarmPieceBytes, { from: 'supernode' }),
      seedUploaded: await counterValue(c.metrics.pieceBytesUploaded)
    }),
    self: () => ({ peerId: c.selfPeerId(), version: c.version, startedAt }),
    now: c.now
  })
}
