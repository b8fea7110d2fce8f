import express, { type Express, type Request, type Response } from 'express'
import type { Logger } from 'pino'
import { canonicalRegistryHost, isDfError, registryBaseUrl, REGISTRY_HOST_RE } from '@damselfly/proto'
import type { DfclientMetrics } from '../metrics.js'
import type { PieceCache } from '../storage/piece-cache.js'
import type { AccessChecker } from './access-check.js'
import { handleBlob, type DownloadOpener } from './blob-handler.js'
import { parseDistributionPath } from './distribution-path.js'
import { refuseBodies, requestGate } from './http-limits.js'
import { sendOciError } from './oci-errors.js'
import { forwardedHeaders, upstreamUrl, type UpstreamClient } from './upstream.js'

export interface MirrorDeps {
  logger: Logger
  metrics: DfclientMetrics
  cache: PieceCache
  upstream: UpstreamClient
  /** Configured `HOST=URL` registry entries (canonical host → base URL). */
  registries: ReadonlyMap<string, string>
  defaultRegistry: string
  openDownload?: DownloadOpener
  /** True once libp2p is started (drives /readyz). */
  isReady: () => boolean
  /** What `GET /status` answers (JSON, no secrets): what `dfclient doctor` reads. Absent = no route. */
  status?: () => unknown
  /** Proof of access before cached or peer bytes are served (absent = not checked: tests only). */
  access?: AccessChecker
  /** Mirror requests served at once (more wait, then get 429); absent = no gate. */
  maxConcurrentRequests?: number
}

const PROBES = new Set(['/livez', '/readyz', '/metrics', '/status'])

/**
 * The registry mirror: OCI pull API (blobs P2P, everything else passed through), plus probes and
 * metrics. Builds the express app without listening, so tests can drive it on an ephemeral port.
 */
export function buildMirrorApp (deps: MirrorDeps): Express {
  const app = express()
  app.disable('x-powered-by')
  app.disable('etag')
  app.set('query parser', false)

  app.use((req, res, next) => {
    const started = process.hrtime.bigint()
    const path = req.path
    res.on('close', () => {
      if (PROBES.has(path)) return
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      const source = res.getHeader('X-Damselfly-Source')
      deps.logger.info({ method: req.method, path, status: res.statusCode, source, bytes: res.locals.bytes ?? 0, ms: Math.round(ms), aborted: !res.writableFinished }, 'request completed')
    })
    next()
  })

  app.get('/livez', (_req, res) => { res.type('text/plain').send('ok') })
  app.get('/readyz', (_req, res) => {
    if (deps.isReady()) res.type('text/plain').send('ok')
    else res.status(503).type('text/plain').send('not ready')
  })
  if (deps.status !== undefined) {
    const status = deps.status
    app.get('/status', (_req, res) => { res.json(status()) })
  }
  app.get('/metrics', (_req, res, next) => {
    deps.metrics.registry.metrics().then(text => {
      res.setHeader('Content-Type', deps.metrics.registry.contentType)
      res.end(text)
    }, next)
  })

  app.use(refuseBodies)
  if (deps.maxConcurrentRequests !== undefined) app.use(requestGate(deps.maxConcurrentRequests, reason => { deps.metrics.requestsRejected.inc({ reason }) }))
  app.use((req, res) => { void handleDistribution(deps, req, res) })
  return app
}

async function handleDistribution (deps: MirrorDeps, req: Request, res: Response): Promise<void> {
  const abort = new AbortController()
  res.on('close', () => { if (!res.writableFinished) abort.abort(new Error('client disconnected')) })
  const signal = abort.signal
  try {
    const qIndex = req.url.indexOf('?')
    const path = qIndex === -1 ? req.url : req.url.slice(0, qIndex)
    const search = qIndex === -1 ? '' : req.url.slice(qIndex + 1)
    const parsed = parseDistributionPath(path)
    if (!parsed.ok) {
      // RFC 9110 §15.5.6: every 405 names the methods that would work.
      if (parsed.status === 405) res.setHeader('Allow', 'GET, HEAD')
      sendOciError(res, parsed.status, parsed.code, parsed.message)
      return
    }
    const route = parsed.route
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      sendOciError(res, 405, 'UNSUPPORTED', `${req.method} is not supported by this read-only mirror`)
      return
    }
    if ((route.kind === 'tags' || route.kind === 'referrers') && req.method !== 'GET') {
      res.setHeader('Allow', 'GET')
      sendOciError(res, 405, 'UNSUPPORTED', `${req.method} ${route.kind} is not supported`)
      return
    }
    const ns = new URLSearchParams(search).get('ns')
    const host = ns !== null && ns !== '' ? canonicalRegistryHost(ns) : deps.defaultRegistry
    if (!REGISTRY_HOST_RE.test(host)) {
      sendOciError(res, 400, 'NAME_INVALID', `invalid ns=: ${JSON.stringify(host.slice(0, 100))} is not a registry HOST[:PORT]`)
      return
    }
    const base = registryBaseUrl(host, deps.registries)
    // Loopback, private and link-local registries only when configured (SSRF); names are checked
    // again on the addresses they resolve to, when the upstream connection is made.
    deps.upstream.check(base)
    const url = upstreamUrl(base, path, search)
    if (route.kind === 'blob') {
      // The task URL carries no client query: the blob is identified by its digest alone.
      await handleBlob(deps, { req, res, digest: route.digest, registry: host, repository: route.name, url: upstreamUrl(base, path, ''), signal })
      return
    }
    const upstream = await deps.upstream.request(req.method === 'HEAD' ? 'HEAD' : 'GET', url, forwardedHeaders(req), signal)
    await deps.upstream.relay(upstream, res, signal, async function * (body) {
      for await (const chunk of body) {
        res.locals.bytes = (res.locals.bytes as number | undefined ?? 0) + chunk.byteLength
        yield chunk
      }
    })
  } catch (err) {
    if (signal.aborted) return
    if (res.headersSent) {
      deps.logger.warn({ err: err instanceof Error ? err.message : String(err), path: req.path }, 'stream failed after headers were sent')
      res.destroy()
      return
    }
    if (isDfError(err) && err.code === 'DF_ERR_REGISTRY_NOT_ALLOWED') {
      deps.logger.info({ err: err.message, path: req.path }, 'registry not allowed')
      sendOciError(res, 403, 'DENIED', err.message)
      return
    }
    if (isDfError(err) && (err.code === 'DF_ERR_UPSTREAM_UNREACHABLE' || err.code === 'DF_ERR_UPSTREAM_TIMEOUT')) {
      deps.logger.warn({ err: err.message, path: req.path }, 'upstream unreachable')
      sendOciError(res, err.code === 'DF_ERR_UPSTREAM_TIMEOUT' ? 504 : 502, 'UNSUPPORTED', err.message)
      return
    }
    deps.logger.error({ err, path: req.path }, 'mirror request failed')
    sendOciError(res, 500, 'UNSUPPORTED', 'internal error')
  }
}
