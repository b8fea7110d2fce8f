import { z } from 'zod'
import { API_PREFIX, peerIdString } from './schemas.js'

/**
 * The piece-protocol allow-list (`GET /api/v1/allowed-peers?since=V`, behind the cluster token):
 * the peer ids the supernode has registered and not expired, plus its own. A dfclient's piece server
 * serves only dialers on it (refusing others with DF_ERR_PEER_NOT_ALLOWED), so knowing a peer's
 * address is not enough to read its cache. `version` changes whenever the list does; a caller that
 * passes its last `version` as `since` gets `peers` only when something changed.
 */
export const ALLOWED_PEERS_PATH = `${API_PREFIX}/allowed-peers`

export const allowedPeersQuery = z.object({
  since: z.string().regex(/^[0-9a-f]{1,64}$/, 'not a version').optional()
}).strict()
export type AllowedPeersQuery = z.infer<typeof allowedPeersQuery>

export const allowedPeersResponse = z.object({
  version: z.string().regex(/^[0-9a-f]{1,64}$/),
  /** Absent when `since` equals `version`: nothing changed. */
  peers: z.array(peerIdString).max(1_000_000).optional()
})
export type AllowedPeersResponse = z.infer<typeof allowedPeersResponse>
