import { fileURLToPath } from 'node:url'
import express, { Router, type Response } from 'express'
import type { DashboardService } from './dashboard-service.js'

/**
 * The page's files. Resolved from this module by a path that is the same from `src/dashboard/` and
 * `dist/dashboard/` (the files are not compiled, so they stay in `src/`; the image copies them).
 */
export const DASHBOARD_STATIC_DIR = fileURLToPath(new URL('../../src/dashboard/static/', import.meta.url))

/** The JSON document the page polls, under the peer API prefix (so behind the cluster token). */
export const DASHBOARD_API_PATH = '/dashboard'

/** Paths of the page and its files: the request log keeps these at debug, like probes. */
export const DASHBOARD_PAGE_PATHS: readonly string[] = ['/', '/dashboard/app.js', '/dashboard/app.css']

/**
 * The page may load only its own script and stylesheet and talk only to this origin: peer-provided
 * strings (hostnames, addresses) are shown as text, and this keeps it so even if one slipped into markup.
 */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

function pageHeaders (res: Response): void {
  res.set({
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    // Small files that change with the binary: revalidate (ETag) rather than serve a stale page after an upgrade.
    'Cache-Control': 'no-cache'
  })
}

/**
 * `GET /` and `/dashboard/*`: the static page. It holds no data, so it is served without the cluster
 * token; the data comes from `dashboardApiRoutes`, which is.
 */
export function dashboardPageRoutes (): Router {
  const router = Router()
  router.get('/', (_req, res, next) => {
    pageHeaders(res)
    res.sendFile('index.html', { root: DASHBOARD_STATIC_DIR }, err => { if (err !== undefined) next(err) })
  })
  router.use('/dashboard', express.static(DASHBOARD_STATIC_DIR, { index: false, redirect: false, setHeaders: pageHeaders }))
  return router
}

/** `GET /api/v1/dashboard`: the read-only snapshot (mounted inside the token-checked API router). */
export function dashboardApiRoutes (service: DashboardService): Router {
  const router = Router()
  router.get(DASHBOARD_API_PATH, async (_req, res) => {
    res.set('Cache-Control', 'no-store').json(await service.snapshot())
  })
  return router
}
