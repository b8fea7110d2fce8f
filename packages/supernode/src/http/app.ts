import { createHash, timingSafeEqual } from 'node:crypto'
import express, { type Express, type RequestHandler } from 'express'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { API_LIMITS, API_PREFIX, dfError } from '@damselfly/proto'
import { feedRoutes } from '../preheat/http/feed-routes.js'
import { harborRoutes, type HarborRoutesDeps } from '../preheat/http/harbor-routes.js'
import { errorHandler, notFound } from './error-handler.js'
import { peerRoutes, type PeerRoutesDeps } from './peer-routes.js'
import { taskRoutes, type TaskRoutesDeps } from './task-routes.js'

export interface AppDeps extends PeerRoutesDeps, TaskRoutesDeps {
  logger: Logger
  /** The clock, for request timings. */
  now: () => number
  /** Cluster secret required on /api/v1; undefined = open. */
  token?: string | undefined
  metrics: Registry
  /** True when LevelDB is open and libp2p started. */
  isReady: () => boolean
  /** Harbor's preheat provider APIs and the peers' preheat feed; absent = not served. */
  preheat?: HarborRoutesDeps | undefined
}

const PROBES = new Set(['/livez', '/readyz', '/metrics'])

/** Compares secrets in constant time, also hiding their lengths (both sides are hashed first). */
function sameSecret (a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest())
}

function requireToken (token: string): RequestHandler {
  return (req, _res, next) => {
    const header = req.get('authorization') ?? ''
    const m = /^Bearer\s+(.+)$/i.exec(header)
    if (m === null || !sameSecret(m[1] as string, token)) {
      next(dfError('DF_ERR_UNAUTHORIZED', 'missing or wrong cluster token (Authorization: Bearer <token>)'))
      return
    }
    next()
  }
}

/** One debug line per request when it completes, carrying what handlers put in `res.locals`; probes skipped. */
function requestLog (logger: Logger, now: () => number): RequestHandler {
  return (req, res, next) => {
    if (PROBES.has(req.path)) { next(); return }
    const started = now()
    // Captured now: inside routers req.path is relative to the mount point.
    const path = req.path
    res.on('close', () => {
      const { taskId, peerId } = res.locals as { taskId?: string, peerId?: string }
      logger.debug({ method: req.method, path, status: res.statusCode, ms: now() - started, taskId, peerId, aborted: !res.writableFinished }, 'request')
    })
    next()
  }
}

/** The supernode's HTTP app (no listen): peer API under /api/v1, probes and metrics. */
export function buildApp (deps: AppDeps): Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('query parser', 'simple')
  app.use(requestLog(deps.logger, deps.now))

  app.get('/livez', (_req, res) => { res.type('text/plain').send('ok\n') })
  app.get('/readyz', (_req, res) => {
    const ready = deps.isReady()
    res.status(ready ? 200 : 503).type('text/plain').send(ready ? 'ready\n' : 'not ready\n')
  })
  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.contentType).send(await deps.metrics.metrics())
  })

  const api = express.Router()
  if (deps.token !== undefined) api.use(requireToken(deps.token))
  api.use(express.json({ limit: API_LIMITS.maxBodyBytes }))
  api.use(peerRoutes(deps))
  api.use(taskRoutes(deps))
  if (deps.preheat !== undefined) api.use(feedRoutes({ feed: deps.preheat.preheat.feed, shutdown: deps.shutdown }))
  app.use(API_PREFIX, api)
  if (deps.preheat !== undefined) app.use(harborRoutes(deps.preheat))

  app.use(notFound)
  app.use(errorHandler(deps.logger))
  return app
}
