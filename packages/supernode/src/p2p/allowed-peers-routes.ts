import { createHash } from 'node:crypto'
import { Router } from 'express'
import { allowedPeersQuery, ALLOWED_PEERS_PATH, API_PREFIX, type AllowedPeersResponse } from '@damselfly/proto'
import { validate } from '../http/validate.js'
import type { RecentCallers } from './recent-callers.js'

export interface AllowedPeersDeps {
  /** Ids of the peers registered and not expired (and of recent peer-API callers, see recent-callers.ts). */
  livePeerIds: () => string[]
  /** Notes peer ids the API sees (its middleware is mounted before the peer-API routes); absent = none. */
  callers?: RecentCallers | undefined
  /** The supernode's own peer id (it is on the list: it seeds). */
  selfPeerId: () => string
  now?: () => number
}

/** The list is rebuilt at most this often: a fleet polling together shares one sort and hash. */
const REBUILD_MS = 1_000

/**
 * `GET /api/v1/allowed-peers?since=V` (mounted under the token-protected `/api/v1` router): the
 * piece-protocol allow-list dfclients enforce (proto `api/allowed-peers.ts`). The version is a hash
 * of the sorted ids, so it changes exactly when membership does and survives nothing it should not.
 */
export function allowedPeersRoutes (deps: AllowedPeersDeps): Router {
  const router = Router()
  const now = deps.now ?? Date.now
  let built: { at: number, version: string, peers: string[] } | undefined
  const current = (): { version: string, peers: string[] } => {
    if (built !== undefined && now() - built.at < REBUILD_MS) return built
    const peers = [...new Set([...deps.livePeerIds(), deps.selfPeerId()])].filter(id => id !== '').sort()
    built = { at: now(), version: createHash('sha256').update(peers.join('\n')).digest('hex').slice(0, 32), peers }
    return built
  }
  router.get(ALLOWED_PEERS_PATH.slice(API_PREFIX.length), (req, res) => {
    const query = validate(allowedPeersQuery, req.query, 'query')
    const { version, peers } = current()
    const reply: AllowedPeersResponse = query.since === version ? { version } : { version, peers }
    res.json(reply)
  })
  return router
}
