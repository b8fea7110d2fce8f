import { Router } from 'express'
import { announceRequest, dfError, peerIdString, type AnnounceResponse, type PeerAddress } from '@damselfly/proto'
import { HEARTBEAT_INTERVAL_MS } from '../scheduler/constants.js'
import type { Swarm } from '../scheduler/swarm.js'
import { validate } from './validate.js'

export interface PeerRoutesDeps {
  swarm: Swarm
  /** The supernode's own libp2p identity and addresses (it seeds like a peer). */
  self: () => PeerAddress
}

/** `/peers`: announce, heartbeat, leave — each one swarm event. */
export function peerRoutes (deps: PeerRoutesDeps): Router {
  const router = Router()

  router.post('/peers', (req, res) => {
    const body = validate(announceRequest, req.body, 'body')
    deps.swarm.peerAnnounced({ peerId: body.peerId, addrs: body.addrs, hostname: body.hostname, version: body.version })
    res.locals.peerId = body.peerId
    const reply: AnnounceResponse = {
      peerId: body.peerId,
      heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
      ttlMs: deps.swarm.peerTtlMs,
      supernode: deps.self()
    }
    res.json(reply)
  })

  router.post('/peers/:peerId/heartbeat', (req, res) => {
    const peerId = validate(peerIdString, req.params.peerId, 'params')
    if (!deps.swarm.peerHeartbeat(peerId)) throw dfError('DF_ERR_PEER_UNKNOWN', `peer ${peerId} is not announced (or expired); announce again`)
    res.status(204).end()
  })

  router.delete('/peers/:peerId', (req, res) => {
    const peerId = validate(peerIdString, req.params.peerId, 'params')
    deps.swarm.peerLeft(peerId)
    res.status(204).end()
  })

  return router
}
