import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'

/** The dfclient's Prometheus metrics (names are a contract: CONTRACTS.md), on a private registry. */
export interface DfclientMetrics {
  readonly registry: Registry
  readonly blobBytesServed: Counter<'source'>
  readonly pieceBytesReceived: Counter<'from'>
  readonly pieceBytesUploaded: Counter
  readonly pieceVerifyFailures: Counter
  readonly upstreamFallbacks: Counter<'reason'>
}

export function createMetrics (version: string): DfclientMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const buildInfo = new Gauge({ name: 'damselfly_build_info', help: 'Build information', labelNames: ['version'], registers: [registry] })
  buildInfo.set({ version }, 1)
  return {
    registry,
    blobBytesServed: new Counter({ name: 'damselfly_blob_bytes_served_total', help: 'Blob body bytes sent to clients, by where they came from', labelNames: ['source'], registers: [registry] }),
    pieceBytesReceived: new Counter({ name: 'damselfly_piece_bytes_received_total', help: 'Verified piece bytes downloaded, from peers or the supernode seed', labelNames: ['from'], registers: [registry] }),
    pieceBytesUploaded: new Counter({ name: 'damselfly_piece_bytes_uploaded_total', help: 'Piece bytes served to other peers', registers: [registry] }),
    pieceVerifyFailures: new Counter({ name: 'damselfly_piece_verify_failures_total', help: 'Pieces rejected by the SHA-256 check', registers: [registry] }),
    upstreamFallbacks: new Counter({ name: 'damselfly_upstream_fallbacks_total', help: 'Pulls that bypassed P2P, by reason', labelNames: ['reason'], registers: [registry] })
  }
}
