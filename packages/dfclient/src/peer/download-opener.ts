import type { Logger } from 'pino'
import { dfError } from '@damselfly/proto'
import { BlobDownload, openBlobDownload, type BlobDownloadComponents, type BlobDownloadInit } from '../download/blob-download.js'
import type { DownloadEvents, PieceFetcher, TaskDirectory, UpstreamRangeOpener } from '../download/ports.js'
import type { DfclientMetrics } from '../metrics.js'
import type { DownloadOpener } from '../mirror/blob-handler.js'
import type { UpstreamClient } from '../mirror/upstream.js'
import type { PieceCache } from '../storage/piece-cache.js'
import type { SupernodeClient } from '../supernode/client.js'
import type { PieceReporter } from '../supernode/piece-reporter.js'

export interface DownloadOpenerComponents {
  peerId: string
  client: SupernodeClient
  reporter: PieceReporter
  fetcher: PieceFetcher
  cache: PieceCache
  /** Marks a blob in use for as long as a download of it runs (the cache never evicts it meanwhile). */
  lease: (digest: string) => () => void
  upstream: UpstreamClient
  metrics: DfclientMetrics
  logger: Logger
  /** False while no supernode has acknowledged this peer: downloads are refused at once. */
  announced: () => boolean
}

/**
 * The one wiring of a P2P blob download (the daemon's mirror, its preheat follower and `dfclient get`
 * all open downloads through it): the supernode task API, the libp2p fetcher, the piece cache, an
 * upstream range opener for a mid-stream fallback, and metrics and logs for what happened.
 */
export function createDownloadOpener (c: DownloadOpenerComponents): DownloadOpener {
  const { peerId, client, reporter, metrics, logger } = c
  const tasks: TaskDirectory = {
    registerTask: async (r, signal) => await client.registerTask({ digest: r.digest, url: r.url, peerId, ...(r.authorization === undefined ? {} : { headers: { authorization: r.authorization } }) }, signal),
    pollPieces: async (digest, since, waitMs, signal, from) => await client.pollPieces(digest, { peerId, since, waitMs, ...(from === undefined ? {} : { from }) }, signal),
    reportPieces: (digest, indexes) => { reporter.report(digest, indexes) },
    reportPieceResults: (digest, results) => { reporter.reportResults(digest, results) }
  }

  return async (request, signal) => {
    // Not announced means the supernode did not answer lately: skip straight to the upstream rather
    // than wait on a connect timeout for every blob.
    if (!c.announced()) throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', 'not announced to any supernode')
    const log = logger.child({ taskId: request.digest })
    let upstreamFrom: number | undefined
    const events: DownloadEvents = {
      pieceReceived: (bytes, from) => { metrics.pieceBytesReceived.inc({ from }, bytes) },
      verifyFailure: ({ index, peerId: from, error }) => {
        metrics.pieceVerifyFailures.inc()
        log.warn({ pieceIndex: index, peerId: from, err: error.message }, 'piece failed verification')
      },
      sourceFailure: ({ index, peerId: from, error }) => { log.debug({ pieceIndex: index, peerId: from, err: error.message }, 'piece source failed') },
      slowPieceRetry: ({ index, slowPeerId, peerId: to, slowMs, typicalMs }) => {
        log.info({ pieceIndex: index, peerId: slowPeerId, retryPeerId: to, slowMs, typicalMs }, 'piece slow from its source; retrying from another')
      },
      upstreamContinuation: ({ offset, error }) => {
        upstreamFrom = offset
        metrics.upstreamFallbacks.inc({ reason: 'p2p_midstream' })
        log.warn({ offset, err: error.message }, 'P2P failed mid-stream; continuing from upstream')
      }
    }
    const rangeOpener: UpstreamRangeOpener = async (range, sig) => {
      const headers: Record<string, string> = { range: `bytes=${range.start}-${range.end}` }
      if (request.authorization !== undefined) headers.authorization = request.authorization
      const res = await c.upstream.request('GET', request.url, headers, sig)
      if (res.statusCode !== 206) {
        await res.body.dump()
        throw dfError('DF_ERR_UPSTREAM_REJECTED', `upstream answered ${res.statusCode} to a range request for ${request.digest}`, { details: { status: res.statusCode } })
      }
      return res.body
    }
    const init: BlobDownloadInit = { ...request, selfPeerId: peerId }
    const components: BlobDownloadComponents = { tasks, fetcher: c.fetcher, cache: c.cache, upstream: rangeOpener, events }
    const opened = await openBlobDownload(init, components, signal)
    const download = new LeasedBlobDownload(init, components, opened.task, opened.layout, () => c.lease(request.digest))
    return { download, upstreamFrom: () => upstreamFrom }
  }
}

/**
 * A download that holds a cache lease on its blob while a read runs: between two pieces nothing else
 * uses the blob, and without the lease an eviction could remove pieces the reader was told are cached.
 */
class LeasedBlobDownload extends BlobDownload {
  readonly #lease: () => () => void

  constructor (init: BlobDownloadInit, components: BlobDownloadComponents, task: BlobDownload['task'], layout: BlobDownload['layout'], lease: () => () => void) {
    super(init, components, task, layout)
    this.#lease = lease
  }

  override async * read (range: { start: number, end: number }, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const release = this.#lease()
    try {
      yield * super.read(range, signal)
    } finally {
      release()
    }
  }
}
