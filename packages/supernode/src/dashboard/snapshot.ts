import { pieceRange, type TaskState } from '@damselfly/proto'
import type { PeerRecord } from '../scheduler/peer-state.js'
import type { Swarm } from '../scheduler/swarm.js'
import type { TaskRecord } from '../tasks/task-store.js'
import { buildPieceMap, MAX_PIECE_CELLS, type PieceMap } from './piece-map.js'

/** What the dashboard reads from the scheduler: its read-only queries only. */
export type SwarmReader = Pick<Swarm, 'livePeers' | 'peerState' | 'holders' | 'uploadRate' | 'inFlight' | 'taskQuarantines'>

/** Where a snapshot's data comes from (the supernode's composition root wires these). */
export interface SnapshotSources {
  swarm: SwarmReader
  /** Every known task record. */
  tasks: () => readonly TaskRecord[]
  /** Indices of the pieces published so far of a running task. */
  publishedPieces: (taskId: string) => Promise<ReadonlySet<number>>
  /** Counter totals since the process started. */
  bytes: () => Promise<{ upstream: number, fromPeers: number, fromSupernode: number, seedUploaded: number }>
  /** The supernode's own identity. */
  self: () => { peerId: string, version: string, startedAt: number }
  now: () => number
}

export interface SnapshotLimits {
  /** Peers listed (the count is always complete). */
  maxPeers: number
  /** Tasks listed with a piece map: running first, then the newest. */
  maxTasks: number
  maxCells: number
}

/** Enough rows for a cluster view that stays a few hundred kilobytes at most per poll. */
export const DEFAULT_LIMITS: SnapshotLimits = { maxPeers: 500, maxTasks: 40, maxCells: MAX_PIECE_CELLS }

export interface PeerRow {
  peerId: string
  hostname: string
  addrs: string[]
  version?: string
  state: 'active' | 'quarantined'
  /** Bytes of verified pieces the peer reported holding (of tasks the supernode knows). */
  heldBytes: number
  heldPieces: number
  /** Bytes/s it uploaded to other peers over the rate window, from their reports. */
  uploadRate: number
  /** Uploads assigned to it and not finished. */
  inFlight: number
  lastSeen: number
}

export interface TaskRow {
  taskId: string
  state: TaskState
  size: number
  pieceSize: number
  pieceCount: number
  createdAt: number
  publishedPieces: number
  /** Live peers holding at least one piece. */
  holders: number
  /** Pieces held by at least one live peer (not counting the seed). */
  piecesWithHolders: number
  map: PieceMap
  quarantines: Array<{ peerId: string, hostname?: string, until: number }>
}

/** The document `GET /api/v1/dashboard` answers (read-only; no secrets). */
export interface DashboardSnapshot {
  generatedAt: number
  supernode: { peerId: string, version: string, startedAt: number, uploadRate: number, inFlight: number }
  totals: {
    peers: number
    tasks: Record<TaskState, number>
    /** `delivered` = fromPeers + fromSupernode; `saved` = what peers received beyond what the upstream sent. */
    bytes: { upstream: number, fromPeers: number, fromSupernode: number, seedUploaded: number, delivered: number, saved: number }
  }
  peers: PeerRow[]
  /** Live peers left out of `peers` by the limit. */
  peersOmitted: number
  tasks: TaskRow[]
  tasksOmitted: number
}

const STATE_ORDER: Record<TaskState, number> = { running: 0, failed: 1, succeeded: 2 }

/**
 * Builds one snapshot. Holdings are walked once per task piece (the swarm keeps no per-peer byte
 * totals), so the cost grows with pieces × holders over every task; the caller caches the result
 * instead of building one per viewer and poll (`DashboardService`).
 */
export async function buildSnapshot (src: SnapshotSources, limits: SnapshotLimits = DEFAULT_LIMITS): Promise<DashboardSnapshot> {
  const now = src.now()
  const self = src.self()
  const peers = src.swarm.livePeers()
  const held = new Map<string, { bytes: number, pieces: number }>(peers.map(p => [p.peerId, { bytes: 0, pieces: 0 }]))
  const hostnames = new Map(peers.map(p => [p.peerId, p.hostname]))
  const records = [...src.tasks()].sort((a, b) => STATE_ORDER[a.state] - STATE_ORDER[b.state] || b.createdAt - a.createdAt)
  const counts: Record<TaskState, number> = { running: 0, succeeded: 0, failed: 0 }
  const tasks: TaskRow[] = []

  for (const [position, record] of records.entries()) {
    counts[record.state]++
    const published = await publishedOf(src, record)
    const holderCounts = new Array<number>(record.pieceCount).fill(0)
    const taskHolders = new Set<string>()
    for (let i = 0; i < record.pieceCount; i++) {
      const ids = src.swarm.holders(record.taskId, i)
      holderCounts[i] = ids.length
      if (ids.length === 0) continue
      const length = pieceRange(record, i).length
      for (const id of ids) {
        taskHolders.add(id)
        const h = held.get(id)
        if (h !== undefined) { h.bytes += length; h.pieces++ }
      }
    }
    if (position >= limits.maxTasks) continue
    tasks.push({
      taskId: record.taskId,
      state: record.state,
      size: record.size,
      pieceSize: record.pieceSize,
      pieceCount: record.pieceCount,
      createdAt: record.createdAt,
      publishedPieces: published.count,
      holders: taskHolders.size,
      piecesWithHolders: holderCounts.filter(n => n > 0).length,
      map: buildPieceMap(record.pieceCount, published.has, i => holderCounts[i] ?? 0, limits.maxCells),
      quarantines: src.swarm.taskQuarantines(record.taskId).map(q => ({ ...q, ...optionalHostname(hostnames.get(q.peerId)) }))
    })
  }

  const bytes = await src.bytes()
  const delivered = bytes.fromPeers + bytes.fromSupernode
  const listed = [...peers].sort((a, b) => a.hostname.localeCompare(b.hostname) || a.peerId.localeCompare(b.peerId)).slice(0, limits.maxPeers)
  return {
    generatedAt: now,
    supernode: { ...self, uploadRate: src.swarm.uploadRate(self.peerId), inFlight: src.swarm.inFlight(self.peerId) },
    totals: {
      peers: peers.length,
      tasks: counts,
      bytes: { ...bytes, delivered, saved: Math.max(0, delivered - bytes.upstream) }
    },
    peers: listed.map(p => peerRow(src.swarm, p, held.get(p.peerId))),
    peersOmitted: peers.length - listed.length,
    tasks,
    tasksOmitted: records.length - tasks.length
  }
}

async function publishedOf (src: SnapshotSources, record: TaskRecord): Promise<{ count: number, has: (i: number) => boolean }> {
  // Only a running task is partly published; reading the others' digests would load them all into memory.
  if (record.state === 'succeeded') return { count: record.pieceCount, has: () => true }
  if (record.state === 'failed') return { count: 0, has: () => false }
  const set = await src.publishedPieces(record.taskId)
  return { count: set.size, has: i => set.has(i) }
}

function peerRow (swarm: SwarmReader, p: PeerRecord, held: { bytes: number, pieces: number } | undefined): PeerRow {
  return {
    peerId: p.peerId,
    hostname: p.hostname,
    addrs: p.addrs,
    ...(p.version === undefined ? {} : { version: p.version }),
    state: swarm.peerState(p.peerId) === 'quarantined' ? 'quarantined' : 'active',
    heldBytes: held?.bytes ?? 0,
    heldPieces: held?.pieces ?? 0,
    uploadRate: swarm.uploadRate(p.peerId),
    inFlight: swarm.inFlight(p.peerId),
    lastSeen: p.lastSeen
  }
}

function optionalHostname (hostname: string | undefined): { hostname?: string } {
  return hostname === undefined ? {} : { hostname }
}
