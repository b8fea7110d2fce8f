import type { Logger } from 'pino'
import { dfError } from '@damselfly/proto'
import { BlobDownload, openBlobDownload, type BlobDownloadComponents, type BlobDownloadInit } from '../download/blob-download.js'
import type { DownloadEvents, PieceFetcher, UpstreamRangeOpener } from '../download/ports.js'
import type { DfclientMetrics } from '../metrics.js'
import type { DownloadOpener } from '../mirror/blob-handler.js'
import type { UpstreamClient } from '../mirror/upstream.js'
import type { PieceCache } from '../storage/piece-cache.js'
import type { PieceReporter } from '../supernode/piece-reporter.js'
import type { TaskOwners } from '../supernode/task-owners.js'
import { OwnedTask } from './owned-task.js'

export interface DownloadOpenerComponents {
  peerId: string
  /** Which supernode owns each task (the ring of healthy supernodes, and running downloads' owners). */
  owners: TaskOwners
  reporter: PieceReporter
  fetcher: PieceFetcher
  cache: PieceCache
  /** Marks a blob in use for as long as a download of it runs (the cache never evicts it meanwhile). */
  lease: (digest: string) => () => void
  upstream: UpstreamClient
  metrics: DfclientMetrics
  logger: Logger
  /** False while no supernode is healthy: downloads are refused at once. */
  announced: () => boolean
}

/**
 * The one wiring of a P2P blob download (the daemon's mirror, its preheat follower and `dfclient get`
 * all open downloads through it): the supernode task API at the task's owner (`OwnedTask`, which
 * moves the download when its owner fails), the libp2p fetcher, the piece cache, an upstream range
 * opener for a mid-stream fallback, and metrics and logs for what happened.
 */
export function createDownloadOpener (c: DownloadOpenerComponents): DownloadOpener {
  const { peerId, owners, reporter, metrics, logger } = c
  const held = (digest: string, pieceCount: number): number[] => {
    const out: number[] = []
    for (let i = 0; i < pieceCount; i++) if (c.cache.hasPieceBytes(digest, i)) out.push(i)
    return out
  }

  return async (request, signal) => {
    // Not announced means the supernode did not answer lately: skip straight to the upstream rather
    // than wait on a connect timeout for every blob.
    if (!c.announced()) throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', 'not announced to any supernode')
    const log = logger.child({ taskId: request.digest })
    const tasks = new OwnedTask({ peerId, owners, reporter, held, logger: log })
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
    let opened: BlobDownload
    try {
      opened = await openBlobDownload(init, components, signal)
    } catch (err) {
      tasks.release()
      throw err
    }
    const download = new LeasedBlobDownload(init, components, opened.task, opened.layout, () => {
      const releaseLease = c.lease(request.digest)
      const releaseOwner = tasks.hold()
      return () => { releaseOwner(); releaseLease() }
    })
    // The registration's own hold on the owner lasts until the first read is under way (which holds it
    // itself), or a little while if the caller never reads.
    const unhold = setTimeout(() => { tasks.release() }, REGISTRATION_HOLD_MS)
    unhold.unref()
    download.onFirstRead(() => { clearTimeout(unhold); tasks.release() })
    return { download, upstreamFrom: () => upstreamFrom }
  }
}

/** How long a registered download keeps its owner without being read (the mirror reads at once). */
const REGISTRATION_HOLD_MS = 60_000

/**
 * A download that holds a cache lease on its blob while a read runs: between two pieces nothing else
 * uses the blob, and without the lease an eviction could remove pieces the reader was told are cached.
 * The lease also holds the task's owner: a running read stays with its supernode while that one is up.
 */
class LeasedBlobDownload extends BlobDownload {
  readonly #lease: () => () => void
  #onFirstRead: (() => void) | undefined

  /** Runs `f` once the first read holds its own lease. */
  onFirstRead (f: () => void): void { this.#onFirstRead = f }

  constructor (init: BlobDownloadInit, components: BlobDownloadComponents, task: BlobDownload['task'], layout: BlobDownload['layout'], lease: () => () => void) {
    super(init, components, task, layout)
    this.#lease = lease
  }

  override async * read (range: { start: number, end: number }, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    const release = this.#lease()
    this.#onFirstRead?.()
    this.#onFirstRead = undefined
    try {
      yield * super.read(range, signal)
    } finally {
      release()
    }
  }
}
