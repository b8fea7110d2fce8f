import { describe, expect, it } from 'vitest'
import { DIGEST_MISMATCH_CODE, Swarm } from '../scheduler/swarm.js'
import { MemoryTaskStore } from '../tasks/memory-task-store.js'
import { TaskBoard } from '../tasks/task-board.js'
import { DashboardService, SNAPSHOT_MAX_AGE_MS } from './dashboard-service.js'
import { buildPieceMap } from './piece-map.js'
import { buildSnapshot, DEFAULT_LIMITS, type SnapshotSources } from './snapshot.js'

const MiB = 1024 * 1024
const SEED = { peerId: 'Seed', addrs: ['/ip4/10.0.0.1/tcp/8003'] }
const DONE = `sha256:${'d'.repeat(64)}`
const RUNNING = `sha256:${'r'.repeat(64)}`

/** A real swarm and task board on a fake clock, wired as the supernode wires them. */
async function setup () {
  let now = 1_000_000
  const clock = (): number => now
  const swarm: Swarm = new Swarm({}, { now: clock, seed: () => SEED, onTaskChanged: t => { board.touch(t) } })
  const board = new TaskBoard(new MemoryTaskStore(), clock, swarm)
  const bytes = { upstream: 10 * MiB, fromPeers: 12 * MiB, fromSupernode: 8 * MiB, seedUploaded: 8 * MiB }
  const sources: SnapshotSources = {
    swarm,
    tasks: () => board.records(),
    publishedPieces: async taskId => new Set((await board.get(taskId))?.pieces.keys() ?? []),
    bytes: async () => bytes,
    self: () => ({ peerId: SEED.peerId, version: '9.9.9', startedAt: 500_000 }),
    now: clock
  }
  for (const [id, host] of [['PeerA', 'node-a'], ['PeerB', 'node-b'], ['PeerC', 'node-c']] as const) {
    swarm.peerAnnounced({ peerId: id, addrs: [`/ip4/10.0.0.2/tcp/65002/${id}`], hostname: host, version: '0.1.0' })
  }
  // A finished 10 MiB blob (3 pieces: 4 + 4 + 2 MiB) and a running 8 MiB one with 1 of 2 pieces published.
  await board.begin({ taskId: DONE, size: 10 * MiB, pieceSize: 4 * MiB, pieceCount: 3, createdAt: 1 })
  for (const i of [0, 1, 2]) await board.publishPiece(DONE, i, `sha256:${String(i).repeat(64)}`)
  await board.finish(DONE, 'succeeded')
  await board.begin({ taskId: RUNNING, size: 8 * MiB, pieceSize: 4 * MiB, pieceCount: 2, createdAt: 2 })
  await board.publishPiece(RUNNING, 0, `sha256:${'0'.repeat(64)}`)
  swarm.piecesHeld({ taskId: DONE, peerId: 'PeerA', indices: [0, 1, 2] })
  swarm.piecesHeld({ taskId: DONE, peerId: 'PeerB', indices: [0, 2] })
  swarm.piecesHeld({ taskId: RUNNING, peerId: 'PeerA', indices: [0] })
  return { swarm, board, sources, bytes, advance: (ms: number) => { now += ms } }
}

describe('dashboard snapshot', () => {
  it('lists live peers with held bytes, upload rate and state', async () => {
    const { swarm, sources } = await setup()
    swarm.pieceTransferSucceeded({ taskId: DONE, requester: 'PeerB', index: 0, source: 'PeerA', bytes: 4 * MiB, durationMs: 100 })
    const s = await buildSnapshot(sources)
    expect(s.totals.peers).toBe(3)
    expect(s.peers.map(p => p.hostname)).toEqual(['node-a', 'node-b', 'node-c'])
    const [a, b, c] = s.peers
    expect(a).toMatchObject({ peerId: 'PeerA', heldBytes: 14 * MiB, heldPieces: 4, state: 'active', version: '0.1.0', addrs: ['/ip4/10.0.0.2/tcp/65002/PeerA'] })
    expect(a!.uploadRate).toBeGreaterThan(0)
    expect(b).toMatchObject({ heldBytes: 6 * MiB, heldPieces: 2, uploadRate: 0 })
    expect(c).toMatchObject({ heldBytes: 0, heldPieces: 0 })
    expect(s.supernode).toMatchObject({ peerId: 'Seed', version: '9.9.9', startedAt: 500_000 })
  })

  it('shows each task with its piece map: published pieces and live holders per piece', async () => {
    const { sources } = await setup()
    const s = await buildSnapshot(sources)
    // Running tasks first.
    expect(s.tasks.map(t => t.taskId)).toEqual([RUNNING, DONE])
    const [running, done] = s.tasks
    expect(running).toMatchObject({ state: 'running', publishedPieces: 1, pieceCount: 2, holders: 1, piecesWithHolders: 1 })
    expect(running!.map.cells).toEqual([[1, 1, 1], [0, 1, 0]])
    expect(done).toMatchObject({ state: 'succeeded', publishedPieces: 3, holders: 2, piecesWithHolders: 3 })
    expect(done!.map.cells).toEqual([[1, 1, 2], [1, 1, 1], [1, 1, 2]])
    expect(s.totals.tasks).toEqual({ running: 1, succeeded: 1, failed: 0 })
  })

  it('counts bytes delivered and saved from the counters', async () => {
    const { sources } = await setup()
    const s = await buildSnapshot(sources)
    expect(s.totals.bytes).toEqual({ upstream: 10 * MiB, fromPeers: 12 * MiB, fromSupernode: 8 * MiB, seedUploaded: 8 * MiB, delivered: 20 * MiB, saved: 10 * MiB })
  })

  it('lists task quarantines with the peer\'s hostname; the holding of the bad piece is gone', async () => {
    const { swarm, sources } = await setup()
    swarm.pieceTransferFailed({ taskId: DONE, requester: 'PeerC', index: 2, source: 'PeerB', code: DIGEST_MISMATCH_CODE })
    const done = (await buildSnapshot(sources)).tasks.find(t => t.taskId === DONE)!
    expect(done.quarantines).toHaveLength(1)
    expect(done.quarantines[0]).toMatchObject({ peerId: 'PeerB', hostname: 'node-b' })
    expect(done.quarantines[0]!.until).toBeGreaterThan(1_000_000)
    expect(done.map.cells[2]).toEqual([1, 1, 1])
  })

  it('drops peers that went silent and respects the row limits', async () => {
    const { swarm, sources, advance } = await setup()
    advance(swarm.peerTtlMs + 1)
    swarm.peerHeartbeat('PeerA')
    swarm.peerAnnounced({ peerId: 'PeerA', addrs: ['/ip4/10.0.0.2/tcp/1'], hostname: 'node-a' })
    let s = await buildSnapshot(sources)
    expect(s.peers.map(p => p.peerId)).toEqual(['PeerA'])
    s = await buildSnapshot(sources, { ...DEFAULT_LIMITS, maxPeers: 0, maxTasks: 1 })
    expect(s).toMatchObject({ peers: [], peersOmitted: 1, tasksOmitted: 1 })
    expect(s.tasks.map(t => t.taskId)).toEqual([RUNNING])
  })

  it('shares one snapshot among viewers for SNAPSHOT_MAX_AGE_MS', async () => {
    const { sources, advance, bytes } = await setup()
    const service = new DashboardService(sources)
    const first = await service.snapshot()
    bytes.upstream = 99
    expect(await service.snapshot()).toBe(first)
    advance(SNAPSHOT_MAX_AGE_MS)
    expect((await service.snapshot()).totals.bytes.upstream).toBe(99)
  })
})

describe('piece map folding', () => {
  const holders = [3, 1, 0, 2, 2, 5, 0]
  const cases = [
    { name: 'one cell per piece up to the cap', pieces: 3, max: 8, published: [0, 2], want: { piecesPerCell: 1, cells: [[1, 1, 3], [0, 1, 1], [1, 1, 0]] } },
    { name: 'folded: each cell counts published pieces and keeps the rarest', pieces: 7, max: 3, published: [0, 1, 2, 3, 4, 5, 6], want: { piecesPerCell: 3, cells: [[2, 2, 1], [2, 2, 0], [3, 3, 0]] } },
    { name: 'an empty blob has no cells', pieces: 0, max: 8, published: [], want: { piecesPerCell: 0, cells: [] } }
  ]
  for (const c of cases) {
    it(c.name, () => {
      expect(buildPieceMap(c.pieces, i => c.published.includes(i), i => holders[i] ?? 0, c.max)).toEqual(c.want)
    })
  }
})
