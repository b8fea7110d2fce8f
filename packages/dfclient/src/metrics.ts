import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

/** The dfclient's Prometheus metrics (names are a contract: CONTRACTS.md), on a private registry. */
export interface DfclientMetrics {
  readonly registry: Registry
  readonly blobBytesServed: Counter<'source'>
  readonly pieceBytesReceived: Counter<'from'>
  readonly pieceBytesUploaded: Counter
  readonly pieceVerifyFailures: Counter
  readonly upstreamFallbacks: Counter<'reason'>
  readonly cacheEvictions: Counter<'reason'>
  /** Points the cache gauges (`damselfly_cache_bytes`, `damselfly_cache_quota_bytes`) at the open cache. */
  observeCache: (usage: () => { usedBytes: number, quotaBytes: number | undefined }) => void
}

export function createMetrics (version: string): DfclientMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const buildInfo = new Gauge({ name: 'damselfly_build_info', help: 'Build information', labelNames: ['version'], registers: [registry] })
  buildInfo.set({ version }, 1)
  let cacheUsage: (() => { usedBytes: number, quotaBytes: number | undefined }) | undefined
  // Read at scrape time: the cache changes with every piece, a pushed value would always lag.
  new Gauge({ name: 'damselfly_cache_bytes', help: 'Disk bytes the piece cache takes (data and metadata, in filesystem blocks)', registers: [registry], collect () { this.set(cacheUsage?.().usedBytes ?? 0) } })
  new Gauge({ name: 'damselfly_cache_quota_bytes', help: 'The piece-cache quota in bytes (--cache-size resolved); 0 = none', registers: [registry], collect () { this.set(cacheUsage?.().quotaBytes ?? 0) } })
  return {
    observeCache: (usage) => { cacheUsage = usage },
    cacheEvictions: new Counter({ name: 'damselfly_cache_evictions_total', help: 'Blobs evicted from the piece cache, by reason (quota: to admit new pieces; ttl: unused too long)', labelNames: ['reason'], registers: [registry] }),
    registry,
    blobBytesServed: new Counter({ name: 'damselfly_blob_bytes_served_total', help: 'Blob body bytes sent to clients, by where they came from', labelNames: ['source'], registers: [registry] }),
    pieceBytesReceived: new Counter({ name: 'damselfly_piece_bytes_received_total', help: 'Verified piece bytes downloaded, from peers or the supernode seed', labelNames: ['from'], registers: [registry] }),
    pieceBytesUploaded: new Counter({ name: 'damselfly_piece_bytes_uploaded_total', help: 'Piece bytes served to other peers', registers: [registry] }),
    pieceVerifyFailures: new Counter({ name: 'damselfly_piece_verify_failures_total', help: 'Pieces rejected by the SHA-256 check', registers: [registry] }),
    upstreamFallbacks: new Counter({ name: 'damselfly_upstream_fallbacks_total', help: 'Pulls that bypassed P2P, by reason', labelNames: ['reason'], registers: [registry] })
  }
}
