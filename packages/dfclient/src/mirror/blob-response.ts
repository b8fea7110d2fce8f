import type { Request, Response } from 'express'
import type { Logger } from 'pino'
import type { DfclientMetrics } from '../metrics.js'
import type { PieceCache } from '../storage/piece-cache.js'
import type { AccessChecker } from './access-check.js'
import type { DownloadOpener } from './blob-handler.js'
import type { UpstreamClient } from './upstream.js'

export type BlobSource = 'local' | 'p2p' | 'upstream'

export interface BlobHandlerDeps {
  cache: PieceCache
  upstream: UpstreamClient
  metrics: DfclientMetrics
  logger: Logger
  /** Absent when P2P is off: every miss goes upstream. */
  openDownload?: DownloadOpener
  /** Proof of access before cached or peer bytes are served; absent = not checked (tests). */
  access?: AccessChecker
}

export interface BlobRequest {
  req: Request
  res: Response
  digest: string
  /** Registry host and repository the client named (the access check's scope). */
  registry: string
  repository: string
  /** Upstream URL of this blob (query minus `ns`). */
  url: string
  signal: AbortSignal
}

export const SOURCE_HEADER = 'X-Damselfly-Source'

export function blobHeaders (res: Response, digest: string, source: BlobSource, partial: { start: number, end: number, size: number } | undefined, length: number): void {
  res.status(partial === undefined ? 200 : 206)
  res.setHeader('Content-Type', 'application/octet-stream')
  res.setHeader('Content-Length', String(length))
  res.setHeader('Docker-Content-Digest', digest)
  res.setHeader('Accept-Ranges', 'bytes')
  res.setHeader(SOURCE_HEADER, source)
  if (partial !== undefined) res.setHeader('Content-Range', `bytes ${partial.start}-${partial.end}/${partial.size}`)
}

export function unsatisfiable (res: Response, size: number): void {
  res.status(416)
  res.setHeader('Content-Range', `bytes */${size}`)
  res.setHeader('Content-Type', 'application/json')
  res.end(JSON.stringify({ errors: [{ code: 'SIZE_INVALID', message: `range not satisfiable for a blob of ${size} bytes` }] }))
}
