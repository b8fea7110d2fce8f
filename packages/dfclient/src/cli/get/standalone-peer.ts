import { rm } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { Libp2p } from 'libp2p'
import type { Logger } from 'pino'
import { dfError } from '@damselfly/proto'
import { VERSION } from '../../dfclient.js'
import { createMetrics, type DfclientMetrics } from '../../metrics.js'
import type { DownloadOpener } from '../../mirror/blob-handler.js'
import { UpstreamClient } from '../../mirror/upstream.js'
import { PeerAllowList } from '../../p2p/allow-list.js'
import { createP2pNode, type EncrypterName } from '../../p2p/node.js'
import { Libp2pPieceFetcher } from '../../p2p/piece-fetcher.js'
import { registerPieceServer } from '../../p2p/piece-server.js'
import { UploadGate } from '../../p2p/upload-limiter.js'
import { createDownloadOpener } from '../../peer/download-opener.js'
import { SupernodeFleet } from '../../peer/fleet.js'
import { FsPieceCache } from '../../storage/fs-piece-cache.js'
import { SupernodeDiscovery } from '../../supernode/discovery.js'
import type { SupernodeSpec } from '../../supernode/endpoints.js'

export interface StandalonePeerInit {
  supernode: readonly SupernodeSpec[]
  token?: string | undefined
  p2pListen: readonly string[]
  p2pAnnounce: readonly string[]
  encrypters: readonly EncrypterName[]
  /** A private, empty directory: the piece cache and peer key; deleted by `stop()`. */
  workDir: string
  logger: Logger
}

/** A short-lived P2P peer: what `dfclient get` downloads through. */
export interface StandalonePeer {
  peerId: string
  openDownload: DownloadOpener
  metrics: DfclientMetrics
  stop: () => Promise<void>
}

/**
 * Starts a peer built from the daemon's own parts (piece cache, libp2p node and piece server,
 * supernode client, reporter, announcer, download opener), so `dfclient get` moves bytes exactly as
 * a pull through the mirror does: pieces from peers and the supernode seed, each verified. It
 * announces itself (its pieces serve others while it runs) and leaves on `stop()`. Its cache lives in
 * `workDir`, never in the daemon's data dir: two processes must not share one cache. Throws
 * DF_ERR_SUPERNODE_UNAVAILABLE when no supernode acknowledges the announce.
 */
export async function startStandalonePeer (init: StandalonePeerInit): Promise<StandalonePeer> {
  const { logger } = init
  const metrics = createMetrics(VERSION)
  const upstream = new UpstreamClient()
  let cache: FsPieceCache | undefined
  let node: Libp2p | undefined
  let fleet: SupernodeFleet | undefined
  let discovery: SupernodeDiscovery | undefined
  let allowList: PeerAllowList | undefined
  const stop = async (): Promise<void> => {
    await fleet?.stop()
    discovery?.stop()
    allowList?.stop()
    await node?.stop()
    await upstream.close()
    await cache?.close()
    await rm(init.workDir, { recursive: true, force: true })
  }
  try {
    const pieceCache = cache = await FsPieceCache.open(init.workDir)
    const p2p = node = await createP2pNode({ keyPath: join(init.workDir, 'peer.key'), listen: init.p2pListen, announce: init.p2pAnnounce, encrypters: init.encrypters })
    const supernodes = discovery = new SupernodeDiscovery({ specs: init.supernode }, { logger })
    await supernodes.start()
    const peers = allowList = new PeerAllowList({ urls: supernodes.live, token: init.token, logger })
    void peers.start()
    await registerPieceServer(p2p, pieceCache, { logger, onBytes: n => { metrics.pieceBytesUploaded.inc(n) }, gate: new UploadGate({ concurrency: 8 }), allowList: peers })
    await p2p.start()
    const peerId = p2p.peerId.toString()
    const peerFleet = fleet = new SupernodeFleet({
      supernodes: init.supernode,
      token: init.token,
      peer: {
        peerId,
        addrs: () => p2p.getMultiaddrs().map(a => a.toString().replace(`/p2p/${peerId}`, '')),
        hostname: `${hostname().slice(0, 240) || 'unknown'}/get`,
        version: VERSION
      }
    }, { cache: pieceCache, logger, discovery: supernodes, discoveryStarted: true })
    await peerFleet.start()
    if (!peerFleet.announced) {
      const why = peerFleet.status().map(e => `${e.url}: ${e.error ?? 'no answer'}`).join('; ')
      throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', `no supernode acknowledged this peer (${peerFleet.configured}): ${why === '' ? 'no supernode address found' : why}`)
    }
    const openDownload = createDownloadOpener({
      peerId,
      owners: peerFleet.owners,
      reporter: peerFleet.reporter,
      fetcher: new Libp2pPieceFetcher(p2p),
      cache: pieceCache,
      lease: digest => pieceCache.acquire(digest),
      upstream,
      metrics,
      logger,
      announced: () => peerFleet.announced
    })
    return { peerId, openDownload, metrics, stop }
  } catch (err) {
    await stop().catch(() => undefined)
    throw err
  }
}
