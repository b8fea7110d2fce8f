import type { Libp2p } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { PIECE_PROTOCOL, dfError, fetchPiece, isDfError, type PieceSource } from '@damselfly/proto'
import type { PieceFetcher } from '../download/ports.js'

/** Per-piece deadline: a 64 MiB piece at ~10 MB/s still fits. */
const PIECE_TIMEOUT_MS = 60_000

/**
 * Fetches pieces over libp2p: one stream per piece on a connection reused per peer (libp2p `dial`
 * returns the open connection when there is one), verified by proto `fetchPiece`.
 */
export class Libp2pPieceFetcher implements PieceFetcher {
  readonly #node: Libp2p

  constructor (node: Libp2p) {
    this.#node = node
  }

  async fetchPiece (source: PieceSource, request: { taskId: string, index: number }, expected: { size: number, digest: string }, signal: AbortSignal, into?: Uint8Array, onBytes?: (n: number) => void): Promise<Uint8Array> {
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(PIECE_TIMEOUT_MS)])
    let stream
    try {
      const peerId = peerIdFromString(source.peerId)
      const existing = this.#node.getConnections(peerId).find(c => c.status === 'open')
      const connection = existing ?? await this.#node.dial(dialAddrs(source), { signal: deadline })
      stream = await connection.newStream(PIECE_PROTOCOL, { signal: deadline })
    } catch (err) {
      if (signal.aborted) throw err
      throw dfError('DF_ERR_PEER_UNREACHABLE', `peer ${source.peerId}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
    try {
      return await fetchPiece(stream, request, expected, { signal: deadline, ...(into === undefined ? {} : { into }), ...(onBytes === undefined ? {} : { onBytes }) })
    } catch (err) {
      if (isDfError(err) || signal.aborted) throw err
      throw dfError('DF_ERR_PROTOCOL', `peer ${source.peerId}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
    }
  }
}

function dialAddrs (source: PieceSource): Multiaddr[] {
  const addrs: Multiaddr[] = []
  for (const a of source.addrs) {
    try {
      const ma = multiaddr(a)
      addrs.push(a.includes('/p2p/') ? ma : ma.encapsulate(`/p2p/${source.peerId}`))
    } catch {
      // An unparseable address from the supernode is skipped; the others may still work.
    }
  }
  if (addrs.length === 0) throw dfError('DF_ERR_PEER_UNREACHABLE', `peer ${source.peerId} has no usable address`)
  return addrs
}
