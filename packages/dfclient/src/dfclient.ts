import { mkdir } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import type { Libp2p } from 'libp2p'
import type { Logger } from 'pino'
import { httpServerLimits, IDLE_SOCKET_MS } from '@damselfly/proto'
import type { DaemonConfig } from './config.js'
import { createMetrics, type DfclientMetrics } from './metrics.js'
import type { DaemonStatus } from './status.js'
import { AccessChecker } from './mirror/access-check.js'
import { buildMirrorApp } from './mirror/app.js'
import { ociClientError } from './mirror/http-limits.js'
import type { DownloadOpener } from './mirror/blob-handler.js'
import { UpstreamClient } from './mirror/upstream.js'
import { PeerAllowList } from './p2p/allow-list.js'
import { createP2pNode } from './p2p/node.js'
import { Libp2pPieceFetcher } from './p2p/piece-fetcher.js'
import { registerPieceServer } from './p2p/piece-server.js'
import { TokenBucket, UploadGate } from './p2p/upload-limiter.js'
import { createDownloadOpener } from './peer/download-opener.js'
import { SupernodeFleet } from './peer/fleet.js'
import { PreheatFeedClient } from './preheat/feed-client.js'
import { PreheatFollower } from './preheat/preheat-follower.js'
import { FsPieceCache } from './storage/fs-piece-cache.js'
import { isComplete } from './storage/piece-cache.js'
import { writeFailureReporter } from './storage/write-failures.js'
import { SupernodeDiscovery } from './supernode/discovery.js'

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
  // Private, loopback and link-local registries are reachable only through their --registry entry.
  const upstream = new UpstreamClient({ timeoutMs: config.upstreamTimeout, registries: config.registry.map(r => r.url) })
  let cache: FsPieceCache | undefined
  let node: Libp2p | undefined
  let server: Server | undefined
  let fleet: SupernodeFleet | undefined
  let discovery: SupernodeDiscovery | undefined
  let allowList: PeerAllowList | undefined
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
        fleet?.forget(digests)
      },
      // A full disk must not fail a pull: the piece goes to its reader uncached, counted and logged.
      onWriteFailed: writeFailureReporter(logger, reason => { metrics.cacheWriteFailures.inc({ reason }) })
    })
    const pieceCache = cache
    metrics.observeCache(() => pieceCache.usage())

    node = await createP2pNode({ keyPath: join(config.dataDir, 'peer.key'), listen: config.p2pListen, announce: config.p2pAnnounce, encrypters: config.p2pEncrypters })
    // The supernodes: static URLs and `dns+` names, resolved once now (bounded) and then periodically.
    const supernodes = discovery = new SupernodeDiscovery({ specs: config.supernode }, { logger })
    await supernodes.start()
    // Pieces go only to peers the supernode registered: knowing this node's address is not enough.
    // Every supernode's list counts (`live` follows discovery).
    const peers = allowList = new PeerAllowList({ urls: supernodes.live, token: config.token, logger })
    void peers.start()
    await registerPieceServer(node, pieceCache, {
      logger,
      allowList: peers,
      onBytes: n => { metrics.pieceBytesUploaded.inc(n) },
      gate: new UploadGate({ concurrency: config.uploadConcurrency }),
      ...(config.uploadRate === undefined ? {} : { rate: new TokenBucket({ bytesPerSecond: config.uploadRate }) })
    })
    await node.start()
    const p2p = node
    const peerId = p2p.peerId.toString()
    const p2pAddrs = p2p.getMultiaddrs().map(a => a.toString())
    ready = true

    const fetcher = new Libp2pPieceFetcher(p2p)
    // Every supernode: an announcer each, and a follower of each one's preheat feed (`all_peers`
    // preheats: fetch what it asks for through the same P2P download as a pull).
    const peerFleet = fleet = new SupernodeFleet({
      supernodes: config.supernode,
      token: config.token,
      peer: {
        peerId,
        addrs: () => p2p.getMultiaddrs().map(a => a.toString().replace(`/p2p/${peerId}`, '')),
        hostname: hostname().slice(0, 253) || 'unknown',
        version: VERSION
      }
    }, {
      cache: pieceCache,
      logger,
      staged: () => pieceCache.staged(),
      discovery: supernodes,
      discoveryStarted: true,
      agent: endpoint => {
        // Preheated blobs are pinned for the cache TTL: as long as an unused blob is kept anyway.
        const follower = new PreheatFollower({ peerId, hostname: hostname().slice(0, 253) || 'unknown', ...(config.cacheTtl > 0 ? { pinMs: config.cacheTtl } : {}) }, {
          feed: new PreheatFeedClient({ urls: [endpoint.url], token: config.token }),
          fetchBlob: async (blob, signal) => {
            if (isComplete(await pieceCache.get(blob.digest))) return
            const { download } = await openDownload({ digest: blob.digest, url: blob.url }, signal)
            for await (const _ of download.read({ start: 0, end: download.layout.size - 1 }, signal)) { /* the pieces land in the cache as they arrive */ }
          },
          pin: (digest, forMs) => { pieceCache.pin(digest, forMs) },
          logger: logger.child({ supernode: endpoint.url })
        })
        return {
          start: () => { follower.start() },
          stop: async () => { await follower.stop() }
        }
      }
    })

    const openDownload: DownloadOpener = createDownloadOpener({
      peerId,
      owners: peerFleet.owners,
      reporter: peerFleet.reporter,
      fetcher,
      cache: pieceCache,
      lease: digest => pieceCache.acquire(digest),
      upstream,
      metrics,
      logger,
      announced: () => peerFleet.announced
    })

    const registries = new Map(config.registry.map(r => [r.host, r.url]))
    const status = (): DaemonStatus => {
      const usage = pieceCache.usage()
      const supernodeStatus = peerFleet.status()
      const shown = supernodeStatus.find(e => e.healthy) ?? supernodeStatus[0]
      const error = peerFleet.announced ? undefined : shown?.error ?? (supernodeStatus.length === 0 ? `no supernode found for ${peerFleet.configured}` : undefined)
      return {
        version: VERSION,
        peerId,
        p2pAddrs,
        supernode: { url: shown?.url ?? peerFleet.configured, announced: peerFleet.announced, ...(error === undefined ? {} : { error }) },
        supernodes: supernodeStatus,
        defaultRegistry: config.defaultRegistry,
        registries: [...registries.keys()],
        cache: { usedBytes: usage.usedBytes, ...(usage.quotaBytes === undefined ? {} : { quotaBytes: usage.quotaBytes }), blobs: usage.blobs, ttlMs: config.cacheTtl }
      }
    }
    const access = new AccessChecker({ upstream, ttlMs: config.accessCheckTtl, onResult: result => { metrics.accessChecks.inc({ result }) } })
    const app = buildMirrorApp({ logger, metrics, cache: pieceCache, upstream, registries, defaultRegistry: config.defaultRegistry, openDownload, isReady: () => ready, status, access, maxConcurrentRequests: config.maxConcurrentRequests })
    const httpServer = createServer(httpServerLimits(config.requestTimeout), app)
    httpServer.timeout = IDLE_SOCKET_MS
    httpServer.on('clientError', ociClientError)
    httpServer.listen(config.listen.port, config.listen.host)
    server = httpServer
    await new Promise<void>((resolve, reject) => {
      httpServer.once('listening', resolve)
      httpServer.once('error', reject)
    })
    const address = httpServer.address() as AddressInfo
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    const httpUrl = `http://${host}:${address.port}`

    await peerFleet.start()
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
    await fleet?.stop()
    discovery?.stop()
    allowList?.stop()
    await closing
    clearTimeout(grace)
    await node?.stop()
    await upstream.close()
    await cache?.close()
  }

  return { start, stop, metrics }
}
