import { performance } from 'node:perf_hooks'
import { layoutFor, pieceRange, pieceUnits, piecesWithin, rendezvousOwner, type PieceLayout } from '@damselfly/proto'
import { ASSIGNMENT_WINDOW, HEARTBEAT_INTERVAL_MS, MAX_UPLOADS_PER_PEER } from '../scheduler/constants.js'
import { Swarm, type SwarmInit } from '../scheduler/swarm.js'
import { EventQueue } from './event-queue.js'
import { Network, type Host } from './links.js'
import { physicalBoundMs, percentile } from './report.js'
import { SimPeer, type PeerWorld, type SupernodeSim } from './sim-peer.js'
import { WaitQueues } from './wait-queues.js'

/** One simulated pull wave. Rates are bytes per second; times are milliseconds. */
export interface SimulationInit {
  peers: number
  blobBytes: number
  /** Every peer's uplink and downlink. */
  peerRate: number
  /** How fast the owning supernode fetches the blob from the upstream registry. */
  upstreamRate: number
  /** The supernodes' uplink to peers; default `upstreamRate` (one NIC carries both). */
  seedRate?: number
  supernodes?: number
  /** `burst`: every peer asks at time 0; `ramp`: arrivals evenly spread over `rampMs`. */
  arrivals?: 'burst' | 'ramp'
  rampMs?: number
  /** From a fetch decision to its first byte (stream set-up); default 1 ms. */
  latencyMs?: number
  /** The dfclient's report batching; default 50 ms (PieceReporter). */
  reportDelayMs?: number
  /** The dfclient delivers pending reports before it polls; default true. */
  flushBeforePoll?: boolean
  /**
   * How peers ask for plans: `startable` (default) plans only what they can start, `window` is the
   * real dfclient's poll (every piece of its window planned). Both record the same state and start the
   * same fetches (a test holds them to it); `startable` costs a fraction of the CPU.
   */
  polls?: 'startable' | 'window'
  /** The dfclient's fetch budget in 4 MiB units (default 4): fewer fetches of larger pieces. */
  concurrency?: number
  window?: number
  /** Kill the task's owner (SIGKILL: no goodbye) at this time; its task moves to the next by the hash. */
  killOwnerAtMs?: number
  /**
   * Wake every waiting peer on every change of the task, as real long-polls are woken, instead of only
   * the peers the change concerns. Costs a poll per waiting peer per change: small swarms only.
   */
  wakeAll?: boolean
  /** Scheduler options (tests and experiments); production defaults otherwise. */
  scheduler?: SwarmInit | undefined
  /** Give up (and report the peers still pulling) once the simulated clock passes this. */
  maxSimulatedMs?: number
  /** Called every `traceEveryMs` with a snapshot of the swarm (for debugging the model). */
  trace?: ((line: string) => void) | undefined
  traceEveryMs?: number
}

export interface SimulationResult {
  peers: number
  completed: number
  /** Last completion minus first arrival. */
  fleetMs: number
  boundMs: number
  boundRatio: number
  /** Bytes fetched from the upstream, in blob copies. */
  upstreamCopies: number
  /** Bytes the supernodes' seeds uploaded to peers, in blob copies. */
  seedCopies: number
  /** Per peer: completion minus its arrival. */
  p50Ms: number
  p99Ms: number
  maxMs: number
  owner: string
  /** The owner that took over after `killOwnerAtMs`, if any. */
  newOwner?: string | undefined
  layout: PieceLayout
  polls: number
  fetches: number
  failedFetches: number
  events: number
  simulatedMs: number
  wallMs: number
}

const TASK_ID = `sha256:${'5e'.repeat(32)}`
/** Peers a freshly published piece wakes (the seed hands it to one; a few more in case that one is busy). */
const WAKE_PER_HOLDER = 4
/** How many waited-for pieces a freed upload slot checks for a waiter it can serve. */
const SLOT_WAKE_SCAN = 16
/** How often the supernode sweeps silent peers (supernode.ts SWEEP_INTERVAL_MS). */
const SWEEP_INTERVAL_MS = 5_000

/** Runs the simulation to the end (every peer done, or `maxSimulatedMs`). */
export function simulate (init: SimulationInit): SimulationResult {
  const began = performance.now()
  const layout = layoutFor(init.blobBytes)
  const perMs = (bytesPerSecond: number): number => bytesPerSecond / 1000
  const q = new EventQueue()
  const net = new Network(q)
  const hosts = new Map<string, Host>()
  const counters = { polls: 0, fetches: 0, failedFetches: 0 }
  const waits = new WaitQueues()
  const peers: SimPeer[] = []
  const byHost = new Map<string, SimPeer>()
  const upstream = new Map<SupernodeSim, { startedAt: number, stoppedAt?: number }>()
  let done = 0

  const supernodes: SupernodeSim[] = Array.from({ length: Math.max(1, init.supernodes ?? 1) }, (_, k) => {
    const id = `supernode-${k + 1}`
    // The scheduler runs on whole milliseconds, as it does on Date.now(): its time arithmetic (waits
    // ending, claims expiring) then agrees with itself exactly.
    const swarm = new Swarm(init.scheduler ?? {}, { now: () => Math.floor(q.now), seed: () => ({ peerId: id, addrs: [] }) })
    const host = net.host(id, perMs(init.seedRate ?? init.upstreamRate), Infinity)
    hosts.set(id, host)
    return { id, swarm, host, alive: true }
  })
  const alive = (): SupernodeSim[] => supernodes.filter(s => s.alive)
  const owner = (): SupernodeSim | undefined => rendezvousOwner(TASK_ID, alive(), s => s.id)
  const firstOwner = owner() as SupernodeSim

  /** The first registration at a supernode starts its back-to-source fetch; pieces publish as they arrive. */
  const register = (peer: SimPeer, sn: SupernodeSim): void => {
    peer.registeredWith = sn
    if (upstream.has(sn)) return
    const t0 = q.now
    upstream.set(sn, { startedAt: t0 })
    sn.swarm.taskStarted({ taskId: TASK_ID, pieceCount: layout.pieceCount, pieceSize: layout.pieceSize })
    for (let i = 0; i < layout.pieceCount; i++) {
      q.at(t0 + pieceRange(layout, i).end / perMs(init.upstreamRate), () => {
        if (!sn.alive) return
        sn.swarm.pieceDigestPublished({ taskId: TASK_ID, index: i })
        if (i === layout.pieceCount - 1) sn.swarm.taskSucceeded({ taskId: TASK_ID })
        if (init.wakeAll === true) wakeEveryone()
        else waits.wake(i, WAKE_PER_HOLDER)
      })
    }
  }

  const wakeEveryone = (): void => { for (const i of [...waits.indices()]) waits.wake(i, Infinity) }
  const world: PeerWorld = {
    q,
    net,
    layout,
    taskId: TASK_ID,
    // The dfclient's fetch budget: 4 pieces of 4 MiB, or fewer larger ones (blob-download.ts).
    concurrency: piecesWithin(init.concurrency ?? 4, layout.pieceSize),
    window: init.window ?? ASSIGNMENT_WINDOW,
    latencyMs: init.latencyMs ?? 1,
    reportDelayMs: init.reportDelayMs ?? 50,
    flushBeforePoll: init.flushBeforePoll ?? true,
    windowPolls: init.polls === 'window',
    owner: peer => peer.registeredWith?.alive === true ? peer.registeredWith : undefined,
    host: id => hosts.get(id),
    waitFor: (peer, indices) => { waits.add(peer, indices) },
    slotFreed: source => {
      if (init.wakeAll === true) { wakeEveryone(); return }
      const holder = byHost.get(source.id)
      if (holder === undefined) return
      let scanned = 0
      for (const index of waits.indices()) {
        if (++scanned > SLOT_WAKE_SCAN) break
        if (holder.holds(index) && waits.wake(index, 1) > 0) break
      }
    },
    reported: (peer, indices) => {
      if (init.wakeAll === true) { wakeEveryone(); return }
      // The new holder can take as many requesters as its upload budget has room for.
      const sn = peer.registeredWith
      let free = sn === undefined ? 0 : Math.ceil((MAX_UPLOADS_PER_PEER - sn.swarm.inFlight(peer.id)) / pieceUnits(layout.pieceSize))
      for (const i of indices) {
        if (free <= 0) break
        free -= waits.wake(i, free)
      }
    },
    finished: () => { done++ },
    counters
  }

  const arrive = (k: number): void => {
    const id = `peer-${String(k).padStart(6, '0')}`
    const host = net.host(id, perMs(init.peerRate), perMs(init.peerRate))
    hosts.set(id, host)
    const peer = new SimPeer(id, host, q.now, world)
    peers.push(peer)
    byHost.set(id, peer)
    for (const sn of alive()) sn.swarm.peerAnnounced({ peerId: id, addrs: [], hostname: id })
    const sn = owner()
    if (sn === undefined) return
    register(peer, sn)
    peer.poll()
  }
  const rampMs = init.arrivals === 'ramp' ? init.rampMs ?? 10_000 : 0
  for (let k = 0; k < init.peers; k++) q.at(init.peers <= 1 ? 0 : rampMs * k / (init.peers - 1), () => { arrive(k) })

  // Heartbeats and the silent-peer sweep, as the dfclients and the supernode run them.
  const tick = (every: number, run: () => void): void => {
    const next = (): void => { q.after(every, () => { if (done < init.peers) { run(); next() } }) }
    next()
  }
  tick(HEARTBEAT_INTERVAL_MS, () => { for (const sn of alive()) for (const p of peers) sn.swarm.peerHeartbeat(p.id) })
  tick(SWEEP_INTERVAL_MS, () => { for (const sn of alive()) sn.swarm.expireSilentPeers() })

  if (init.trace !== undefined) {
    const trace = init.trace
    let lastUp = 0
    const every = init.traceEveryMs ?? 500
    tick(every, () => {
      const up = peers.reduce((n, p) => n + p.host.uploaded, 0)
      const ups = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
      for (const p of peers) ups[Math.min(9, p.host.uploads.size)]!++
      const hist = [0, 0, 0, 0, 0, 0]
      const cursors: number[] = []
      for (const p of peers) if (!p.done) { hist[Math.min(5, p.fetching)]!++; cursors.push(p.cursor) }
      cursors.sort((a, b) => a - b)
      const pulling = peers.length - done
      trace(`t=${(q.now / 1000).toFixed(2)} done=${done} fetching(0..4+)=${hist.join('/')} cursor(p0/10/50/90/100)=${pulling === 0 ? '-' : [0, 0.1, 0.5, 0.9, 1].map(f => percentile(cursors, f)).join('/')} peerUplink=${((up - lastUp) / every / (peers.length * perMs(init.peerRate)) * 100).toFixed(0)}% uploads(0..9+)=${ups.join('/')} seedUploads=${firstOwner.host.uploads.size} polls=${counters.polls}`)
      lastUp = up
    })
  }

  let newOwner: SupernodeSim | undefined
  if (init.killOwnerAtMs !== undefined) {
    q.at(init.killOwnerAtMs, () => {
      firstOwner.alive = false
      const u = upstream.get(firstOwner)
      if (u !== undefined) u.stoppedAt = q.now
      hosts.delete(firstOwner.id)
      for (const t of [...firstOwner.host.uploads]) byHost.get(t.dst.id)?.sourceDied(firstOwner.id)
      newOwner = owner()
      const next = newOwner
      if (next === undefined) return
      // Each download notices at once (its long-poll's connection resets), re-registers at the next
      // owner by the same hash and re-reports what it holds; a finished peer re-reports when its
      // next heartbeat finds the owner gone (spread over one heartbeat interval).
      peers.forEach((p, k) => {
        const delay = p.done ? HEARTBEAT_INTERVAL_MS * (k + 1) / peers.length : world.latencyMs
        q.after(delay, () => {
          register(p, next)
          p.reportHeld()
          p.wake()
        })
      })
    })
  }

  q.run(() => done >= init.peers, init.maxSimulatedMs ?? Infinity)

  const durations = peers.filter(p => p.done).map(p => (p.doneAt as number) - p.arrival).sort((a, b) => a - b)
  const firstArrival = peers.reduce((m, p) => Math.min(m, p.arrival), Infinity)
  const lastDone = peers.reduce((m, p) => Math.max(m, p.doneAt ?? q.now), 0)
  const fleetMs = peers.length === 0 ? 0 : lastDone - firstArrival
  const boundMs = physicalBoundMs({ peers: init.peers, blobBytes: init.blobBytes, peerRate: init.peerRate, upstreamRate: init.upstreamRate, lastArrivalMs: rampMs })
  let upstreamBytes = 0
  for (const [, u] of upstream) upstreamBytes += Math.min(init.blobBytes, ((u.stoppedAt ?? q.now) - u.startedAt) * perMs(init.upstreamRate))
  const seedBytes = supernodes.reduce((n, s) => n + s.host.uploaded, 0)
  return {
    peers: init.peers,
    completed: done,
    fleetMs,
    boundMs,
    boundRatio: fleetMs / boundMs,
    upstreamCopies: upstreamBytes / init.blobBytes,
    seedCopies: seedBytes / init.blobBytes,
    p50Ms: percentile(durations, 0.5),
    p99Ms: percentile(durations, 0.99),
    maxMs: durations.at(-1) ?? 0,
    owner: firstOwner.id,
    newOwner: newOwner?.id,
    layout,
    polls: counters.polls,
    fetches: counters.fetches,
    failedFetches: counters.failedFetches,
    events: q.processed,
    simulatedMs: q.now,
    wallMs: performance.now() - began
  }
}
