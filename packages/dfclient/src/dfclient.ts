import { mkdir } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import type { Libp2p } from 'libp2p'
import type { Logger } from 'pino'
import type { DaemonConfig } from './config.js'
import { createMetrics, type DfclientMetrics } from './metrics.js'
import type { DaemonStatus } from './status.js'
import { buildMirrorApp } from './mirror/app.js'
import type { DownloadOpener } from './mirror/blob-handler.js'
import { UpstreamClient } from './mirror/upstream.js'
import { createP2pNode } from './p2p/node.js'
import { Libp2pPieceFetcher } from './p2p/piece-fetcher.js'
import { registerPieceServer } from './p2p/piece-server.js'
import { TokenBucket, UploadGate } from './p2p/upload-limiter.js'
import { Announcer } from './peer/announcer.js'
import { createDownloadOpener } from './peer/download-opener.js'
import { PreheatFeedClient } from './preheat/feed-client.js'
import { PreheatFollower } from './preheat/preheat-follower.js'
import { FsPieceCache } from './storage/fs-piece-cache.js'
import { isComplete } from './storage/piece-cache.js'
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
  let follower: PreheatFollower | undefined
  let ready = false

  async function start (): Promise<DfclientInfo> {
    await mkdir(config.dataDir, { recursive: true })
    cache = await FsPieceCache.open(config.dataDir, {
      quota: config.cacheSize,
      ttlMs: config.cacheTtl,
      onRemoved: (digests, reason) => {
        if (reason !== 'dropped') {
          metrics.cacheEvictions.inc({ reason }, digests.length)
          logger.info({ blobs: digests.length, reason, digests: digests.slice(0, 20) }, 'evicted from the piece cache')
        }
        // The supernode must stop sending peers here for these blobs.
        announcer?.forget(digests)
      }
    })
    const pieceCache = cache
    metrics.observeCache(() => pieceCache.usage())

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
    const fetcher = new Libp2pPieceFetcher(p2p)
    announcer = new Announcer({
      peerId,
      addrs: () => p2p.getMultiaddrs().map(a => a.toString().replace(`/p2p/${peerId}`, '')),
      hostname: hostname().slice(0, 253) || 'unknown',
      version: VERSION
    }, { client, cache: pieceCache, reporter, logger, staged: () => pieceCache.staged() })
    const peerAnnouncer = announcer

    const openDownload: DownloadOpener = createDownloadOpener({
      peerId,
      client,
      reporter,
      fetcher,
      cache: pieceCache,
      lease: digest => pieceCache.acquire(digest),
      upstream,
      metrics,
      logger,
      announced: () => peerAnnouncer.announced !== undefined
    })

    const registries = new Map(config.registry.map(r => [r.host, r.url]))
    const status = (): DaemonStatus => {
      const usage = pieceCache.usage()
      const error = peerAnnouncer.lastError
      return {
        version: VERSION,
        peerId,
        p2pAddrs,
        supernode: { url: peerAnnouncer.supernodeUrl, announced: peerAnnouncer.announced !== undefined, ...(error === undefined ? {} : { error }) },
        defaultRegistry: config.defaultRegistry,
        registries: [...registries.keys()],
        cache: { usedBytes: usage.usedBytes, ...(usage.quotaBytes === undefined ? {} : { quotaBytes: usage.quotaBytes }), blobs: usage.blobs, ttlMs: config.cacheTtl }
      }
    }
    const app = buildMirrorApp({ logger, metrics, cache: pieceCache, upstream, registries, defaultRegistry: config.defaultRegistry, openDownload, isReady: () => ready, status })
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
    // `all_peers` preheats: fetch what the supernode asks for through the same P2P download as a pull.
    follower = new PreheatFollower({ peerId, hostname: hostname().slice(0, 253) || 'unknown' }, {
      feed: new PreheatFeedClient({ urls: config.supernode, token: config.token }),
      fetchBlob: async (blob, signal) => {
        if (isComplete(await pieceCache.get(blob.digest))) return
        const { download } = await openDownload({ digest: blob.digest, url: blob.url }, signal)
        for await (const _ of download.read({ start: 0, end: download.layout.size - 1 }, signal)) { /* the pieces land in the cache as they arrive */ }
      },
      logger
    })
    follower.start()
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
    await follower?.stop()
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
