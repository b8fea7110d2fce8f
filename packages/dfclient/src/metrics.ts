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
  /** Cached pieces that failed their check on read (the entry is dropped and refetched). */
  readonly cacheCorruptPieces: Counter
  /** Verified pieces that could not be cached (`quota`, `disk_full`, `io`); the pull went on without caching. */
  readonly cacheWriteFailures: Counter<'reason'>
  /** Proof-of-access checks by result: `granted` (HEAD said yes), `cached`, `denied`, `error`. */
  readonly accessChecks: Counter<'result'>
  /** Requests refused by the mirror's concurrency gate (`queue_full`, `wait_timeout`). */
  readonly requestsRejected: Counter<'reason'>
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
  const metrics: DfclientMetrics = {
    observeCache: (usage) => { cacheUsage = usage },
    cacheEvictions: new Counter({ name: 'damselfly_cache_evictions_total', help: 'Blobs evicted from the piece cache, by reason (quota: to admit new pieces; ttl: unused too long)', labelNames: ['reason'], registers: [registry] }),
    cacheCorruptPieces: new Counter({ name: 'damselfly_cache_corrupt_pieces_total', help: 'Cached pieces that failed their SHA-256 check when read; the entry was dropped and the bytes fetched again', registers: [registry] }),
    cacheWriteFailures: new Counter({ name: 'damselfly_cache_write_failures_total', help: 'Verified pieces that could not be cached (quota, disk_full, io); they were served without caching', labelNames: ['reason'], registers: [registry] }),
    accessChecks: new Counter({ name: 'damselfly_access_checks_total', help: 'Proof-of-access checks before serving cached or peer bytes, by result (granted, cached, denied, error)', labelNames: ['result'], registers: [registry] }),
    requestsRejected: new Counter({ name: 'damselfly_http_requests_rejected_total', help: 'Requests refused by the concurrency gate, by reason (queue_full, wait_timeout)', labelNames: ['reason'], registers: [registry] }),
    registry,
    blobBytesServed: new Counter({ name: 'damselfly_blob_bytes_served_total', help: 'Blob body bytes sent to clients, by where they came from', labelNames: ['source'], registers: [registry] }),
    pieceBytesReceived: new Counter({ name: 'damselfly_piece_bytes_received_total', help: 'Verified piece bytes downloaded, from peers or the supernode seed', labelNames: ['from'], registers: [registry] }),
    pieceBytesUploaded: new Counter({ name: 'damselfly_piece_bytes_uploaded_total', help: 'Piece bytes served to other peers', registers: [registry] }),
    pieceVerifyFailures: new Counter({ name: 'damselfly_piece_verify_failures_total', help: 'Pieces rejected by the SHA-256 check', registers: [registry] }),
    upstreamFallbacks: new Counter({ name: 'damselfly_upstream_fallbacks_total', help: 'Pulls that bypassed P2P, by reason', labelNames: ['reason'], registers: [registry] })
  }
  // The contract's fixed label values exist from the start (at 0), so rate() and sums over `source`
  // or `from` never miss a series that has simply not happened yet on this node.
  for (const source of ['local', 'p2p', 'upstream']) metrics.blobBytesServed.inc({ source }, 0)
  for (const from of ['peer', 'supernode']) metrics.pieceBytesReceived.inc({ from }, 0)
  return metrics
}
