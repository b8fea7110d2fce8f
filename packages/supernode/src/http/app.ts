import { createHash, timingSafeEqual } from 'node:crypto'
import express, { type Express, type RequestHandler } from 'express'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { API_LIMITS, API_PREFIX, dfError } from '@damselfly/proto'
import type { DashboardService } from '../dashboard/dashboard-service.js'
import { DASHBOARD_API_PATH, DASHBOARD_PAGE_PATHS, dashboardApiRoutes, dashboardPageRoutes } from '../dashboard/routes.js'
import { allowedPeersRoutes, type AllowedPeersDeps } from '../p2p/allowed-peers-routes.js'
import { feedRoutes } from '../preheat/http/feed-routes.js'
import { harborRoutes, type HarborRoutesDeps } from '../preheat/http/harbor-routes.js'
import { errorHandler, notFound } from './error-handler.js'
import { bodyLimit, requestGate } from './limits.js'
import { peerRoutes, type PeerRoutesDeps } from './peer-routes.js'
import { requestLog } from './request-log.js'
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
  /** The dashboard's data; absent = no dashboard (page and API). */
  dashboard?: DashboardService | undefined
  /** Requests served at once beyond the probes (more wait, then 429); absent = no gate. */
  maxConcurrentRequests?: number | undefined
  /** The piece-protocol allow-list dfclients fetch; absent = not served. */
  allowedPeers?: AllowedPeersDeps | undefined
}

/** Requests logged at debug: probes, scrapes and the dashboard (page and polls). */
const QUIET_PATHS = new Set(['/livez', '/readyz', '/metrics', ...DASHBOARD_PAGE_PATHS, `${API_PREFIX}${DASHBOARD_API_PATH}`])

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

/** The supernode's HTTP app (no listen): peer API under /api/v1, probes, metrics, preheat APIs and the dashboard. */
export function buildApp (deps: AppDeps): Express {
  const app = express()
  app.disable('x-powered-by')
  app.set('query parser', 'simple')
  app.use(requestLog(deps.logger, deps.now, QUIET_PATHS))
  app.use(bodyLimit)

  app.get('/livez', (_req, res) => { res.type('text/plain').send('ok\n') })
  app.get('/readyz', (_req, res) => {
    const ready = deps.isReady()
    res.status(ready ? 200 : 503).type('text/plain').send(ready ? 'ready\n' : 'not ready\n')
  })
  app.get('/metrics', async (_req, res) => {
    res.type(deps.metrics.contentType).send(await deps.metrics.metrics())
  })

  if (deps.maxConcurrentRequests !== undefined) app.use(requestGate(deps.maxConcurrentRequests))

  const api = express.Router()
  if (deps.token !== undefined) api.use(requireToken(deps.token))
  api.use(express.json({ limit: API_LIMITS.maxBodyBytes }))
  if (deps.allowedPeers?.callers !== undefined) api.use(deps.allowedPeers.callers.middleware())
  api.use(peerRoutes(deps))
  api.use(taskRoutes(deps))
  if (deps.preheat !== undefined) api.use(feedRoutes({ feed: deps.preheat.preheat.feed, shutdown: deps.shutdown }))
  if (deps.dashboard !== undefined) api.use(dashboardApiRoutes(deps.dashboard))
  if (deps.allowedPeers !== undefined) api.use(allowedPeersRoutes(deps.allowedPeers))
  app.use(API_PREFIX, api)
  if (deps.preheat !== undefined) app.use(harborRoutes(deps.preheat))
  if (deps.dashboard !== undefined) app.use(dashboardPageRoutes())

  app.use(notFound)
  app.use(errorHandler())
  return app
}
