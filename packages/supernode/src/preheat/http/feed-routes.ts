import { Router } from 'express'
import { peerIdString, preheatFeedQuery, preheatResultsRequest } from '@damselfly/proto'
import { z } from 'zod'
import { validate } from '../../http/validate.js'
import type { PeerFeed } from '../peer-feed.js'

export interface FeedRoutesDeps {
  feed: PeerFeed
  /** Aborts at shutdown, ending long-polls early. */
  shutdown: AbortSignal
}

const feedId = z.string().regex(/^\d{1,15}$/, 'not a preheat job id')

/** `::ffff:10.0.0.5` → `10.0.0.5`: Harbor's table shows the address operators know. */
function plainIp (address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1') || 'unknown'
}

/**
 * The preheat feed under `/api/v1` (behind the cluster token): each dfclient long-polls
 * `/peers/:peerId/preheats` and reports to `/peers/:peerId/preheats/:id/results`. Shapes in
 * `@damselfly/proto` (`api/preheat-feed.ts`).
 */
export function feedRoutes (deps: FeedRoutesDeps): Router {
  const router = Router()
  router.get('/peers/:peerId/preheats', async (req, res) => {
    const peerId = validate(peerIdString, req.params.peerId, 'params')
    const query = validate(preheatFeedQuery, req.query, 'query')
    res.locals.peerId = peerId
    // A client that goes away must not keep its poll (and timer) alive.
    const gone = new AbortController()
    const onClose = (): void => { gone.abort() }
    res.on('close', onClose)
    try {
      const reply = await deps.feed.poll(peerId, { hostname: query.hostname ?? 'unknown', ip: plainIp(req.socket.remoteAddress) }, query, AbortSignal.any([gone.signal, deps.shutdown]))
      if (!gone.signal.aborted) res.json(reply)
    } finally {
      res.off('close', onClose)
    }
  })
  router.post('/peers/:peerId/preheats/:id/results', (req, res) => {
    const peerId = validate(peerIdString, req.params.peerId, 'params')
    const id = validate(feedId, req.params.id, 'params')
    const body = validate(preheatResultsRequest, req.body, 'body')
    res.locals.peerId = peerId
    deps.feed.report(peerId, id, body.results)
    res.status(204).end()
  })
  return router
}
