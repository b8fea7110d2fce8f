import { readFileSync } from 'node:fs'
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

/** The package version, read once from package.json (same relative path from src/ and dist/). */
export const SUPERNODE_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version

export interface SupernodeMetrics {
  registry: Registry
  upstreamBytes: Counter
  pieceBytesUploaded: Counter
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
  return {
    registry,
    upstreamBytes: new Counter({ name: 'damselfly_upstream_bytes_total', help: 'Bytes fetched from upstream registries (back-to-source and preheat).', registers: [registry] }),
    pieceBytesUploaded: new Counter({ name: 'damselfly_piece_bytes_uploaded_total', help: 'Piece bytes the supernode seeded to peers.', registers: [registry] })
  }
}
