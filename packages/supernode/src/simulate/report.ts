import type { SimulationResult } from './simulation.js'

/**
 * The physical bound on a pull wave's completion time: no schedule can beat it. S/U: the blob must
 * arrive from the upstream once; S/D: each peer must receive the whole blob over its own downlink;
 * N·S/(U + ΣD): N copies must be uploaded, by the seed at U and by the peers at most at their rates
 * (a peer's uplink equals its downlink here). With arrivals spread over a ramp, the last peer cannot
 * finish before it arrives plus S/D.
 */
export function physicalBoundMs (o: { peers: number, blobBytes: number, peerRate: number, upstreamRate: number, lastArrivalMs?: number }): number {
  const s = o.blobBytes
  const u = o.upstreamRate / 1000
  const d = o.peerRate / 1000
  return Math.max(s / u, s / d, o.peers * s / (u + o.peers * d), (o.lastArrivalMs ?? 0) + s / d)
}

/** The `p`-quantile (0..1) of ascending `sorted` values, nearest rank; 0 for none. */
export function percentile (sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number
}

const s = (ms: number): string => `${(ms / 1000).toFixed(2)}s`

/** The report `npm run simulate` prints: one `key=value` line per figure, stable for scripts. */
export function formatResult (r: SimulationResult, setup: string): string {
  return [
    `simulate: ${setup}`,
    `  pieces=${r.layout.pieceCount}x${r.layout.pieceSize / 1048576}MiB owner=${r.owner}${r.newOwner === undefined ? '' : ` new_owner=${r.newOwner}`}`,
    `  completed=${r.completed}/${r.peers}`,
    `  fleet_completion=${s(r.fleetMs)}`,
    `  physical_bound=${s(r.boundMs)}  max(S/U, S/D, N*S/(U+sum D))`,
    `  bound_ratio=${r.boundRatio.toFixed(3)}`,
    `  upstream_copies=${r.upstreamCopies.toFixed(3)}`,
    `  seed_copies=${r.seedCopies.toFixed(3)}`,
    `  per_peer p50=${s(r.p50Ms)} p99=${s(r.p99Ms)} max=${s(r.maxMs)}`,
    `  scheduler polls=${r.polls} fetches=${r.fetches} failed_fetches=${r.failedFetches} events=${r.events}`,
    `  sim_run_time=${s(r.wallMs)}`
  ].join('\n')
}
