import { mkdir } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import type { Libp2p } from 'libp2p'
import type { Logger } from 'pino'
import { dfError } from '@damselfly/proto'
import type { DaemonConfig } from './config.js'
import { openBlobDownload } from './download/blob-download.js'
import type { DownloadEvents, TaskDirectory, UpstreamRangeOpener } from './download/ports.js'
import { createMetrics, type DfclientMetrics } from './metrics.js'
import { buildMirrorApp } from './mirror/app.js'
import type { DownloadOpener } from './mirror/blob-handler.js'
import { UpstreamClient } from './mirror/upstream.js'
import { createP2pNode } from './p2p/node.js'
import { Libp2pPieceFetcher } from './p2p/piece-fetcher.js'
import { registerPieceServer } from './p2p/piece-server.js'
import { TokenBucket, UploadGate } from './p2p/upload-limiter.js'
import { Announcer } from './peer/announcer.js'
import { FsPieceCache } from './storage/fs-piece-cache.js'
import { SupernodeClient } from './supernode/client.js'
import { PieceReporter } from './supernode/piece-reporter.js'

export const VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version

/** What a started dfclient exposes (also logged as the `ready` line). */
export interface DfclientInfo {
  httpUrl: string
  peerId: string
  p2pAddrs: string[]
}

export interface Dfclient {
  start: () => Promise<DfclientInfo>
  stop: () => Promise<void>
  readonly metrics: DfclientMetrics
}

/**
 * Composition root: builds the piece cache, libp2p node, supernode client, announcer and mirror from a
 * validated config. Nothing happens until `start()`; `stop()` leaves the supernode and releases
 * everything `start()` acquired.
 */
export function createDfclient (config: DaemonConfig, components: { logger: Logger }): Dfclient {
  const logger = components.logger
  const metrics = createMetrics(VERSION)
  const upstream = new UpstreamClient()
  let cache: FsPieceCache | undefined
  let node: Libp2p | undefined
  let server: Server | undefined
  let announcer: Announcer | undefined
  let reporter: PieceReporter | undefined
  let ready = false

  async function start (): Promise<DfclientInfo> {
    await mkdir(config.dataDir, { recursive: true })
    cache = await FsPieceCache.open(config.dataDir, 'bytes' in config.cacheSize ? { quotaBytes: config.cacheSize.bytes } : {})
    const pieceCache = cache

    node = await createP2pNode({ keyPath: join(config.dataDir, 'peer.key'), listen: config.p2pListen, announce: config.p2pAnnounce, encrypters: config.p2pEncrypters })
    await registerPieceServer(node, pieceCache, {
      logger,
      onBytes: n => { metrics.pieceBytesUploaded.inc(n) },
      gate: new UploadGate({ concurrency: config.uploadConcurrency }),
      ...(config.uploadRate === undefined ? {} : { rate: new TokenBucket({ bytesPerSecond: config.uploadRate }) })
    })
    await node.start()
    const p2p = node
    const peerId = p2p.peerId.toString()
    const p2pAddrs = p2p.getMultiaddrs().map(a => a.toString())
    ready = true

    const client = new SupernodeClient({ urls: config.supernode, ...(config.token === undefined ? {} : { token: config.token }) })
    reporter = new PieceReporter(client, peerId, logger)
    const pieceReporter = reporter
    const tasks: TaskDirectory = {
      registerTask: async (r, signal) => await client.registerTask({ digest: r.digest, url: r.url, peerId, ...(r.authorization === undefined ? {} : { headers: { authorization: r.authorization } }) }, signal),
      pollPieces: async (digest, since, waitMs, signal) => await client.pollPieces(digest, { peerId, since, waitMs }, signal),
      reportPieces: (digest, indexes) => { pieceReporter.report(digest, indexes) },
      reportPieceResults: (digest, results) => { pieceReporter.reportResults(digest, results) }
    }
    const fetcher = new Libp2pPieceFetcher(p2p)
    announcer = new Announcer({
      peerId,
      addrs: () => p2p.getMultiaddrs().map(a => a.toString().replace(`/p2p/${peerId}`, '')),
      hostname: hostname().slice(0, 253) || 'unknown',
      version: VERSION
    }, { client, cache: pieceCache, reporter, logger })
    const peerAnnouncer = announcer

    const openDownload: DownloadOpener = async (request, signal) => {
      // Not announced means the supernode did not answer lately: skip straight to the upstream rather
      // than wait on a connect timeout for every blob.
      if (peerAnnouncer.announced === undefined) throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', 'not announced to any supernode')
      const log = logger.child({ taskId: request.digest })
      let upstreamFrom: number | undefined
      const events: DownloadEvents = {
        pieceReceived: (bytes, from) => { metrics.pieceBytesReceived.inc({ from }, bytes) },
        verifyFailure: ({ index, peerId: from, error }) => {
          metrics.pieceVerifyFailures.inc()
          log.warn({ pieceIndex: index, peerId: from, err: error.message }, 'piece failed verification')
        },
        sourceFailure: ({ index, peerId: from, error }) => { log.debug({ pieceIndex: index, peerId: from, err: error.message }, 'piece source failed') },
        upstreamContinuation: ({ offset, error }) => {
          upstreamFrom = offset
          metrics.upstreamFallbacks.inc({ reason: 'p2p_midstream' })
          log.warn({ offset, err: error.message }, 'P2P failed mid-stream; continuing from upstream')
        }
      }
      const rangeOpener: UpstreamRangeOpener = async (range, sig) => {
        const headers: Record<string, string> = { range: `bytes=${range.start}-${range.end}` }
        if (request.authorization !== undefined) headers.authorization = request.authorization
        const res = await upstream.request('GET', request.url, headers, sig)
        if (res.statusCode !== 206) {
          await res.body.dump()
          throw dfError('DF_ERR_UPSTREAM_REJECTED', `upstream answered ${res.statusCode} to a range request for ${request.digest}`, { details: { status: res.statusCode } })
        }
        return res.body
      }
      const download = await openBlobDownload({ ...request, selfPeerId: peerId }, { tasks, fetcher, cache: pieceCache, upstream: rangeOpener, events }, signal)
      return { download, upstreamFrom: () => upstreamFrom }
    }

    const registries = new Map(config.registry.map(r => [r.host, r.url]))
    const app = buildMirrorApp({ logger, metrics, cache: pieceCache, upstream, registries, defaultRegistry: config.defaultRegistry, openDownload, isReady: () => ready })
    const httpServer = app.listen(config.listen.port, config.listen.host)
    server = httpServer
    await new Promise<void>((resolve, reject) => {
      httpServer.once('listening', resolve)
      httpServer.once('error', reject)
    })
    const address = httpServer.address() as AddressInfo
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    const httpUrl = `http://${host}:${address.port}`

    await announcer.start()
    const info = { httpUrl, peerId, p2pAddrs }
    logger.info(info, 'ready')
    return info
  }

  async function stop (): Promise<void> {
    ready = false
    const closing = server === undefined
      ? Promise.resolve()
      : new Promise<void>(resolve => { server?.close(() => { resolve() }) })
    server?.closeIdleConnections()
    // In-flight pulls get a short grace period, then are cut (clients retry against the next host).
    const grace = setTimeout(() => { server?.closeAllConnections() }, 5000)
    await announcer?.stop()
    reporter?.stop()
    await closing
    clearTimeout(grace)
    await node?.stop()
    await upstream.close()
    await cache?.close()
  }

  return { start, stop, metrics }
}
