import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import type { PrivateKey } from '@libp2p/interface'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Logger } from 'pino'
import { PIECE_PROTOCOL, dfError, isDfError, servePiece, type PieceOpener } from '@damselfly/proto'

export type EncrypterName = 'tls' | 'noise'

export interface P2PNodeInit {
  privateKey: PrivateKey
  listen: readonly string[]
  announce: readonly string[]
  /** In order of preference; libp2p negotiates the first one both ends support. */
  encrypters: readonly EncrypterName[]
  openPiece: PieceOpener
  /**
   * Whether a dialer may fetch pieces: a peer the swarm has registered and not expired. Others are
   * refused with DF_ERR_PEER_NOT_ALLOWED (the seed holds every blob anyone pulled, private ones
   * included; only cluster members may read it). Absent = everyone (tests).
   */
  isAllowed?: (peerId: string) => boolean
  onUploadedBytes: (n: number) => void
  logger: Logger
}

/** Concurrent piece uploads per connection: several pieces in flight per peer, bounded. */
const MAX_INBOUND_PIECE_STREAMS = 64
/** Deadline for one whole piece upload (64 MiB at ~1 MB/s): a stalled peer must not pin a file forever. */
const PIECE_STREAM_TIMEOUT_MS = 120_000

const ENCRYPTERS = { tls, noise } as const satisfies Record<EncrypterName, () => unknown>

/**
 * The supernode's libp2p node (created, not started): tcp, the configured encrypters, yamux, and the
 * piece protocol handler serving what the seed has written and hashed.
 */
export async function createP2PNode (init: P2PNodeInit): Promise<Libp2p> {
  const node = await createLibp2p({
    start: false,
    privateKey: init.privateKey,
    addresses: {
      listen: [...init.listen],
      ...(init.announce.length > 0 ? { announce: [...init.announce] } : {})
    },
    transports: [tcp()],
    connectionEncrypters: init.encrypters.map(name => ENCRYPTERS[name]()),
    streamMuxers: [yamux()],
    connectionManager: {
      // Every peer of a test cluster (and of a NATed node pool) shares one source IP: the default
      // of 5 new inbound connections per second per IP would refuse a fleet starting together.
      inboundConnectionThreshold: 1000,
      maxIncomingPendingConnections: 100,
      maxConnections: 1000
    }
  })
  await node.handle(PIECE_PROTOCOL, async (stream, connection) => {
    const started = Date.now()
    // servePiece starts reading before any await of its own (LIBP2P.md gotcha 2).
    const remote = connection.remotePeer.toString()
    const open: PieceOpener = async (request, signal) => {
      if (init.isAllowed !== undefined && !init.isAllowed(remote)) throw dfError('DF_ERR_PEER_NOT_ALLOWED', `peer ${remote} is not registered with this supernode`)
      return await init.openPiece(request, signal)
    }
    const result = await servePiece(stream, open, {
      signal: AbortSignal.timeout(PIECE_STREAM_TIMEOUT_MS),
      onBytes: init.onUploadedBytes
    })
    const fields = { peerId: remote, taskId: result.request?.taskId, pieceIndex: result.request?.index, bytes: result.bytes, ms: Date.now() - started }
    if (isDfError(result.error) && result.error.code === 'DF_ERR_PEER_NOT_ALLOWED') init.logger.warn(fields, 'piece refused: the dialer is not a registered peer')
    else if (result.error !== undefined) init.logger.debug({ ...fields, err: result.error }, 'piece upload failed')
    else if (result.bytes > 0) init.logger.debug(fields, 'piece seeded')
  }, { maxInboundStreams: MAX_INBOUND_PIECE_STREAMS })
  return node
}

/** The node's announced addresses without the `/p2p/<id>` suffix, as the peer API carries them. */
export function bareAddrs (node: Libp2p): string[] {
  const suffix = `/p2p/${node.peerId.toString()}`
  return node.getMultiaddrs().map(a => a.toString()).map(a => a.endsWith(suffix) ? a.slice(0, -suffix.length) : a)
}
