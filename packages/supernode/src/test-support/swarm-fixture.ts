import { Swarm, type PiecePlan, type SwarmInit } from '../scheduler/swarm.js'

// The swarm*.test.ts files' fixture (test-support is left out of the package build).

export const SEED = { peerId: 'Seed', addrs: ['/ip4/10.0.0.1/tcp/8003'] }
export const T = 'sha256:task'

/** A swarm on a fake clock, with helpers that speak in events. */
export function setup (init: SwarmInit = {}) {
  let now = 1_000_000
  const changed: string[] = []
  const swarm = new Swarm(init, { now: () => now, seed: () => SEED, onTaskChanged: t => changed.push(t) })
  const h = {
    swarm,
    changed,
    advance: (ms: number) => { now += ms },
    announce: (...ids: string[]) => { for (const id of ids) swarm.peerAnnounced({ peerId: id, addrs: [`/ip4/10.0.0.2/tcp/1/${id}`], hostname: id }) },
    /** A running task with the given pieces published. */
    task: (taskId: string, pieceCount: number, published: readonly number[] = Array.from({ length: pieceCount }, (_, i) => i)) => {
      swarm.taskStarted({ taskId, pieceCount })
      for (const index of published) swarm.pieceDigestPublished({ taskId, index })
    },
    hold: (taskId: string, peerId: string, ...indices: number[]) => {
      if (!swarm.piecesHeld({ taskId, peerId, indices })) throw new Error(`piecesHeld refused ${peerId}'s pieces ${indices.join(', ')} of ${taskId}`)
    },
    /** Requests as `requester` and returns piece index → source ids, plus the order of indices. */
    ask: (taskId: string, requester?: string) => view(swarm.piecesRequested({ taskId, requester }))
  }
  return h
}

export function view (plans: PiecePlan[]) {
  const sources = new Map(plans.map(p => [p.index, p.sources.map(s => s.peerId)]))
  return { order: plans.map(p => p.index), sources, of: (i: number) => sources.get(i) ?? [], first: (i: number) => sources.get(i)?.[0], plans }
}
