import { mkdir } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { Libp2p } from 'libp2p'
import type { Logger } from 'pino'
import { httpServerLimits, IDLE_SOCKET_MS, parseDigest, pieceRange, type PeerAddress, type PieceOpener } from '@damselfly/proto'
import type { SupernodeConfig } from './config.js'
import { createDashboard } from './dashboard/create-dashboard.js'
import { buildApp } from './http/app.js'
import { apiClientError } from './http/limits.js'
import { countReportedTransfers, createMetrics, SUPERNODE_VERSION, type SupernodeMetrics } from './metrics.js'
import { bareAddrs, createP2PNode } from './p2p/node.js'
import { RecentCallers } from './p2p/recent-callers.js'
import { loadOrCreatePeerKey } from './p2p/peer-key.js'
import type { PreheatJobStore } from './preheat/ports.js'
import { createPreheatModule } from './preheat/preheat-module.js'
import { Swarm } from './scheduler/swarm.js'
import { BackToSource } from './seed/back-to-source.js'
import { BlobFiles } from './seed/blob-files.js'
import { supernodeRegistryPolicy } from './seed/registry-access.js'
import { createUpstreamFetcher, type UpstreamFetcher } from './seed/upstream-fetch.js'
import { LevelTaskStore } from './tasks/level-task-store.js'
import { TaskBoard } from './tasks/task-board.js'
import type { TaskStore } from './tasks/task-store.js'

/** Collaborators a caller may replace (tests, embedding). Only `logger` is required. */
export interface SupernodeComponents {
  logger: Logger
  store?: TaskStore
  now?: () => number
  fetchUpstream?: UpstreamFetcher
  maxConcurrentFetches?: number
  preheatStore?: PreheatJobStore
}

/** A running (or runnable) supernode. `start()` does all I/O; `stop()` is idempotent. */
export interface Supernode {
  start: () => Promise<void>
  stop: () => Promise<void>
  /** `http://host:port` with the bound port (127.0.0.1 when bound to a wildcard). Valid after start. */
  readonly httpUrl: string
  readonly peerId: string
  /** Full multiaddrs including `/p2p/<peerId>`. Valid after start. */
  readonly p2pAddrs: string[]
  readonly metrics: SupernodeMetrics
}

/** How often expired peers are swept (they are also treated as gone on lookup). */
const SWEEP_INTERVAL_MS = 5_000
/** How long stop() lets in-flight HTTP requests finish before cutting connections. */
const HTTP_DRAIN_MS = 2_000

export function createSupernode (config: SupernodeConfig, components: SupernodeComponents): Supernode {
  const logger = components.logger
  const now = components.now ?? Date.now
  const store = components.store ?? new LevelTaskStore(join(config.dataDir, 'meta'))
  // The scheduler state; the board feeds it durable task changes, it wakes the board's long-pollers.
  const swarm: Swarm = new Swarm({}, { now, seed: () => self(), onTaskChanged: taskId => { board.touch(taskId) } })
  const board = new TaskBoard(store, now, swarm)
  const files = new BlobFiles(config.dataDir)
  const registryPolicy = supernodeRegistryPolicy(config.registry)
  // Peers that used the peer API lately: allowed on the piece protocol before their (re-)announce.
  const callers = new RecentCallers(now)
  const metrics = createMetrics({ peerCount: () => swarm.peerCount(), taskCounts: () => swarm.tasksByState() })
  const seeder = new BackToSource({
    board,
    files,
    // Loopback, private and link-local registries only through their --registry entry (SSRF).
    fetchUpstream: components.fetchUpstream ?? createUpstreamFetcher({ policy: registryPolicy, timeoutMs: config.upstreamTimeout }),
    logger,
    now,
    ...(components.maxConcurrentFetches === undefined ? {} : { maxConcurrent: components.maxConcurrentFetches }),
    onUpstreamBytes: n => { metrics.upstreamBytes.inc(n) },
    // Also sent by the board once the failure is stored; this one drops holders even if that write fails.
    onTaskFailed: taskId => { swarm.taskFailed({ taskId }) }
  })
  const preheat = createPreheatModule(config, {
    logger,
    now,
    board,
    register: async input => await seeder.register(input),
    store: components.preheatStore,
    onUpstreamBytes: n => { metrics.upstreamBytes.inc(n) },
    policy: registryPolicy
  })
  const shutdown = new AbortController()

  let node: Libp2p | undefined
  let server: Server | undefined
  let storeOpen = false
  let sweeper: NodeJS.Timeout | undefined
  let httpUrl = ''
  let stopping: Promise<void> | undefined

  const self = (): PeerAddress => ({ peerId: node?.peerId.toString() ?? '', addrs: node === undefined ? [] : bareAddrs(node) })

  // Serves only pieces whose digest is published: their bytes are written and hashed.
  const openPiece: PieceOpener = async (request) => {
    const task = await board.get(request.taskId)
    if (task === undefined || task.record.state === 'failed' || !task.pieces.has(request.index)) return undefined
    const range = pieceRange(task.record, request.index)
    return { size: range.length, body: await files.openRange(parseDigest(request.taskId), range.start, range.end) }
  }

  const app = buildApp({
    logger,
    token: config.token,
    metrics: metrics.registry,
    isReady: () => storeOpen && node?.status === 'started' && stopping === undefined,
    swarm,
    board,
    register: async input => await seeder.register(input),
    self,
    now,
    shutdown: shutdown.signal,
    preheat: preheat.http,
    onPieceResults: e => { countReportedTransfers(metrics, self().peerId, e.requester, e.results) },
    dashboard: createDashboard({ swarm, board, metrics, selfPeerId: () => self().peerId, version: SUPERNODE_VERSION, now }),
    maxConcurrentRequests: config.maxConcurrentRequests,
    allowedPeers: { livePeerIds: () => [...swarm.livePeers().map(p => p.peerId), ...callers.ids()], callers, selfPeerId: () => self().peerId, now }
  })

  async function start (): Promise<void> {
    await mkdir(config.dataDir, { recursive: true })
    await store.open()
    storeOpen = true
    // Tasks a previous process left running have nobody filling them, and tasks cut by another
    // version's piece-layout rule cannot be served to today's dfclients: drop their data.
    for (const { record, reason } of await board.load()) {
      logger.info({ taskId: record.taskId, pieceSize: record.pieceSize }, reason === 'abandoned' ? 'discarding task left running by a previous process' : 'discarding task cut into pieces by another version\'s layout rule; it is fetched again on its next pull')
      await files.remove(parseDigest(record.taskId))
    }
    // Before the HTTP server: job ids continue from the stored ones, and unfinished jobs resume.
    await preheat.start()

    const privateKey = await loadOrCreatePeerKey(join(config.dataDir, 'peer.key'))
    node = await createP2PNode({
      privateKey,
      listen: config.p2pListen,
      announce: config.p2pAnnounce,
      encrypters: config.p2pEncrypters,
      openPiece,
      // The seed serves cluster members only: peers announced and not expired.
      isAllowed: peerId => swarm.peer(peerId) !== undefined || callers.has(peerId),
      onUploadedBytes: n => { metrics.pieceBytesUploaded.inc(n) },
      logger
    })
    await node.start()

    server = createServer(httpServerLimits(config.requestTimeout), app)
    server.timeout = IDLE_SOCKET_MS
    server.on('clientError', apiClientError)
    const srv = server
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject)
      srv.listen(config.listen.port, config.listen.host, () => { srv.off('error', reject); resolve() })
    })
    const addr = srv.address() as AddressInfo
    const host = addr.address === '0.0.0.0' || addr.address === '::' ? '127.0.0.1' : addr.address.includes(':') ? `[${addr.address}]` : addr.address
    httpUrl = `http://${host}:${addr.port}`

    sweeper = setInterval(() => {
      const expired = swarm.expireSilentPeers()
      if (expired.length > 0) logger.info({ peers: expired }, 'expired silent peers')
    }, SWEEP_INTERVAL_MS)
    sweeper.unref()

    if (config.token === undefined) logger.warn('no --token set: the peer API is open to anyone who can reach it')
    logger.info({ httpUrl, peerId: node.peerId.toString(), p2pAddrs: node.getMultiaddrs().map(a => a.toString()) }, 'ready')
  }

  async function doStop (): Promise<void> {
    if (sweeper !== undefined) clearInterval(sweeper)
    // Stop accepting first, then end long-polls and fetches, then let requests drain briefly.
    const closed = server === undefined
      ? Promise.resolve()
      : new Promise<void>(resolve => { server?.close(() => { resolve() }) })
    server?.closeIdleConnections()
    shutdown.abort()
    board.wakeAll()
    // Before the seed: its aborted fetches must not be recorded as the jobs' failures.
    await preheat.stop()
    await seeder.stop()
    const timer = setTimeout(() => { server?.closeAllConnections() }, HTTP_DRAIN_MS)
    await closed
    clearTimeout(timer)
    await node?.stop()
    if (storeOpen) {
      storeOpen = false
      await store.close()
    }
    logger.info('stopped')
  }

  return {
    start,
    stop: async () => { stopping ??= doStop(); await stopping },
    get httpUrl () { return httpUrl },
    get peerId () { return node?.peerId.toString() ?? '' },
    get p2pAddrs () { return node?.getMultiaddrs().map(a => a.toString()) ?? [] },
    metrics
  }
}
