import express, { Router, type Request } from 'express'
import { API_LIMITS, dfError, tryParseDigest } from '@damselfly/proto'
import { validate } from '../../http/validate.js'
import { dragonflyJobReply, legacyCreateReply, legacyStatusReply } from '../harbor-replies.js'
import type { PreheatJob } from '../job.js'
import { manifestUrlOf, parseManifestUrl } from '../manifest.js'
import type { SeedHost } from '../ports.js'
import type { PreheatService } from '../preheat-service.js'
import { requirePreheatToken } from './auth.js'
import { dragonflyCreateJob, krakenNotification, legacyCreatePreheat, lowerKeys } from './harbor-schemas.js'

export interface HarborRoutesDeps {
  preheat: PreheatService
  seed: SeedHost
  /** Undefined = the preheat APIs are open. */
  preheatToken?: string | undefined
  /** Lower-case header carrying the token (`authorization` = Bearer). */
  preheatAuthHeader: string
}

/** Every path Harbor's drivers call; the token check covers exactly these. */
const PREHEAT_PATHS = ['/healthy', '/oapi', '/_ping', '/preheats', '/health', '/registry']

/** Harbor sends `Content-Type: application/json`; other callers may not, and the body is JSON regardless. */
const json = express.json({ limit: API_LIMITS.maxBodyBytes, type: () => true })

function jobOf (deps: HarborRoutesDeps, req: Request): PreheatJob {
  const text = String(req.params.id)
  const id = /^\d{1,15}$/.test(text) ? Number(text) : NaN
  const job = Number.isSafeInteger(id) ? deps.preheat.get(id) : undefined
  if (job === undefined) throw dfError('DF_ERR_PREHEAT_JOB_UNKNOWN', `no preheat job ${JSON.stringify(text.slice(0, 40))}`)
  return job
}

/** The artifact's digest, when the request names one: preheat what Harbor meant even if the tag moved since. */
function pinnedUrl (url: string, digest: string | null | undefined): string {
  if (digest === undefined || digest === null || tryParseDigest(digest) === undefined) return url
  return manifestUrlOf(parseManifestUrl(url), digest)
}

/**
 * Harbor's three provider protocols (PROTOCOLS.md §1): the current Dragonfly driver (`/healthy`,
 * `/oapi/v1/jobs`), the legacy one (`/_ping`, `/preheats`) and Kraken's (`/health`,
 * `/registry/notifications`). All three create the same jobs; only the shapes differ.
 */
export function harborRoutes (deps: HarborRoutesDeps): Router {
  const router = Router()
  router.use(PREHEAT_PATHS, requirePreheatToken(deps.preheatToken, deps.preheatAuthHeader))

  // Current Dragonfly driver (Harbor ≥ 2.12): the manager answers a JSON string.
  router.get('/healthy', (_req, res) => { res.json('OK') })
  router.post('/oapi/v1/jobs', json, async (req, res) => {
    const body = validate(dragonflyCreateJob, req.body, 'body')
    const a = body.args
    const job = await deps.preheat.create({
      driver: 'dragonfly',
      url: a.url,
      headers: a.headers,
      scope: a.scope,
      platforms: a.platform,
      concurrency: a.concurrent_count === 0 || a.concurrent_count == null ? undefined : a.concurrent_count,
      timeoutMs: a.timeout === 0 || a.timeout == null ? undefined : Math.max(1000, Math.ceil(a.timeout / 1_000_000))
    })
    res.json(dragonflyJobReply(job, deps.seed))
  })
  router.get('/oapi/v1/jobs/:id', async (req, res) => {
    const job = jobOf(deps, req)
    res.json(dragonflyJobReply(job, deps.seed, await deps.preheat.progress(job.id)))
  })

  // Legacy Dragonfly driver (Harbor ≤ 2.11), as the v1 supernode answered it.
  router.get('/_ping', (_req, res) => { res.type('text/plain').send('OK') })
  router.post('/preheats', json, async (req, res) => {
    const body = validate(legacyCreatePreheat, req.body, 'body')
    const job = await deps.preheat.create({ driver: 'dragonfly-legacy', url: pinnedUrl(body.url, body.digest), headers: body.headers, scope: 'single_seed_peer' })
    res.status(201).json(legacyCreateReply(job))
  })
  router.get('/preheats/:id', (req, res) => {
    res.json(legacyStatusReply(jobOf(deps, req)))
  })

  // Kraken driver: Harbor treats any 2xx as SUCCESS at once and never polls, so the jobs run in the
  // background (their ids are in the reply, and pollable at /oapi/v1/jobs/{id}). Harbor sends no
  // registry token here: the jobs use the supernode's own registry credentials.
  router.get('/health', (_req, res) => { res.type('text/plain').send('OK\n') })
  router.post('/registry/notifications', json, async (req, res) => {
    const body = validate(krakenNotification, lowerKeys(req.body), 'body')
    const jobs: number[] = []
    for (const event of body.events) {
      if (event.action !== 'push') continue
      const job = await deps.preheat.create({ driver: 'kraken', url: pinnedUrl(event.target.url, event.target.digest), scope: 'single_seed_peer' })
      jobs.push(job.id)
    }
    res.json({ jobs })
  })
  return router
}
