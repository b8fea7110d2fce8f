import { readFileSync } from 'node:fs'
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

/** The package version, read once from package.json (same relative path from src/ and dist/). */
export const SUPERNODE_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

export interface SupernodeMetrics {
  registry: Registry
  upstreamBytes: Counter
  pieceBytesUploaded: Counter
  /** Verified piece bytes peers reported receiving, by source: `peer` (another peer) or `supernode` (the seed). */
  swarmPieceBytes: Counter<'from'>
}

/** Where a reported piece came from, as `damselfly_swarm_piece_bytes_total` labels it. */
export type PieceOrigin = 'peer' | 'supernode'

/**
 * Counts the bytes of successful transfers a peer reported. A peer's "transfer" from itself (its own
 * staged copy) moved nothing over the network and is not counted.
 */
export function countReportedTransfers (metrics: SupernodeMetrics, seedPeerId: string, requester: string, results: ReadonlyArray<{ ok: boolean, sourcePeerId: string, bytes?: number | undefined }>): void {
  for (const r of results) {
    if (!r.ok || r.bytes === undefined || r.bytes <= 0 || r.sourcePeerId === requester) continue
    const from: PieceOrigin = r.sourcePeerId === seedPeerId ? 'supernode' : 'peer'
    metrics.swarmPieceBytes.inc({ from }, r.bytes)
  }
}

/** The current value of a counter's series (0 when never incremented). */
export async function counterValue (counter: Counter<string>, labels: Record<string, string> = {}): Promise<number> {
  const keys = Object.keys(labels)
  const series = (await counter.get()).values.find(v => keys.length === Object.keys(v.labels).length && keys.every(k => v.labels[k] === labels[k]))
  return series?.value ?? 0
}

/**
 * The supernode's Prometheus metrics (names are a contract: CONTRACTS.md), on a registry of its own
 * so several supernodes in one test process do not collide. Gauges read live state at scrape time.
 */
export function createMetrics (sources: { peerCount: () => number, taskCounts: () => Record<string, number> }): SupernodeMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  new Gauge({ name: 'damselfly_build_info', help: 'Build information; always 1.', labelNames: ['version'], registers: [registry] })
    .set({ version: SUPERNODE_VERSION }, 1)
  new Gauge({
    name: 'damselfly_peers',
    help: 'Live peers (announced and not expired).',
    registers: [registry],
    collect () { this.set(sources.peerCount()) }
  })
  new Gauge({
    name: 'damselfly_tasks',
    help: 'Known tasks by state.',
    labelNames: ['state'],
    registers: [registry],
    collect () {
      for (const [state, n] of Object.entries(sources.taskCounts())) this.set({ state }, n)
    }
  })
  const swarmPieceBytes = new Counter({
    name: 'damselfly_swarm_piece_bytes_total',
    help: 'Verified piece bytes peers reported receiving, by source (peer: from another peer; supernode: from the seed).',
    labelNames: ['from'],
    registers: [registry]
  })
  // Both series exist from the start, so rate() and the dashboard never see a missing one.
  for (const from of ['peer', 'supernode'] satisfies PieceOrigin[]) swarmPieceBytes.inc({ from }, 0)
  return {
    registry,
    upstreamBytes: new Counter({ name: 'damselfly_upstream_bytes_total', help: 'Bytes fetched from upstream registries (back-to-source and preheat).', registers: [registry] }),
    pieceBytesUploaded: new Counter({ name: 'damselfly_piece_bytes_uploaded_total', help: 'Piece bytes the supernode seeded to peers.', registers: [registry] }),
    swarmPieceBytes
  }
}
