import { Readable, Transform, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Response } from 'express'
import { isDfError } from '@damselfly/proto'
import type { BlobDownload } from '../download/blob-download.js'
import { verifyDigest } from '../download/verify.js'
import { isComplete } from '../storage/piece-cache.js'
import { blobHeaders, SOURCE_HEADER, unsatisfiable, type BlobHandlerDeps, type BlobRequest, type BlobSource } from './blob-response.js'
import { parseRange } from './range.js'
import { serveLocal } from './serve-local.js'
import { forwardedHeaders } from './upstream.js'

export type { BlobHandlerDeps, BlobRequest, BlobSource } from './blob-response.js'

/**
 * Opens a P2P download of a blob (registers the task); throws before any byte when it cannot.
 * `upstreamFrom()` is the blob offset from which bytes come from the upstream instead of P2P, once a
 * mid-stream fallback happened, so served bytes are counted by where they really came from.
 */
export type DownloadOpener = (request: { digest: string, url: string, authorization?: string }, signal: AbortSignal) => Promise<{ download: BlobDownload, upstreamFrom: () => number | undefined }>

/**
 * GET/HEAD `/v2/<name>/blobs/<digest>`: local cache, else P2P, else upstream (docs/protocol.md).
 * Bytes from the cache or from peers go out only once the client's own credentials proved they can
 * read the blob upstream (`access`); without that proof the request passes through, and the client
 * gets the upstream's own answer.
 */
export async function handleBlob (deps: BlobHandlerDeps, r: BlobRequest): Promise<void> {
  const { req, digest } = r
  const cached = await deps.cache.get(digest)
  const p2p = req.method === 'GET' && deps.openDownload !== undefined
  const complete = isComplete(cached)
  // Asked in parallel with the task registration below: the HEAD's round trip overlaps the supernode's.
  const access = complete || p2p ? allowed(deps, r) : Promise.resolve(true)
  if (complete) {
    if (!await access) { if (!r.signal.aborted) await serveUpstream(deps, r, undefined); return }
    if (await serveLocal(deps, r, cached)) return
  }
  if (!p2p || deps.openDownload === undefined) {
    await serveUpstream(deps, r, req.method === 'HEAD' ? undefined : 'p2p_disabled')
    return
  }
  const authorization = req.headers.authorization
  let opened: Awaited<ReturnType<DownloadOpener>>
  try {
    opened = await deps.openDownload(authorization === undefined ? { digest, url: r.url } : { digest, url: r.url, authorization }, r.signal)
  } catch (err) {
    if (r.signal.aborted) return
    const reason = !isDfError(err)
      ? 'register_failed'
      : err.code === 'DF_ERR_UPSTREAM_REJECTED' ? 'upstream_rejected'
        : err.code === 'DF_ERR_SUPERNODE_UNAVAILABLE' ? 'supernode_unavailable' : 'register_failed'
    deps.logger.warn({ digest, reason, err: String(err instanceof Error ? err.message : err) }, 'P2P unavailable for blob, fetching from upstream')
    await serveUpstream(deps, r, reason)
    return
  }
  if (!await access) { if (!r.signal.aborted) await serveUpstream(deps, r, undefined); return }
  await serveP2p(deps, r, opened.download, opened.upstreamFrom)
}

async function allowed (deps: BlobHandlerDeps, r: BlobRequest): Promise<boolean> {
  if (deps.access === undefined) return true
  return await deps.access.allowed({
    url: r.url,
    registry: r.registry,
    repository: r.repository,
    digest: r.digest,
    authorization: r.req.headers.authorization,
    // Our own agent, not the client's: registry logs tell the mirror's checks from client traffic.
    headers: { 'user-agent': 'damselfly-dfclient (proof of access)' }
  }, r.signal)
}

async function serveP2p (deps: BlobHandlerDeps, r: BlobRequest, download: BlobDownload, upstreamFrom: () => number | undefined): Promise<void> {
  const { req, res, digest } = r
  const size = download.task.size
  const range = parseRange(req.headers.range, size)
  if (range.type === 'unsatisfiable') { unsatisfiable(res, size); return }
  const start = range.type === 'partial' ? range.start : 0
  const end = range.type === 'partial' ? range.end : size - 1
  const body = download.read({ start, end }, r.signal)
  // Peek the first chunk before committing headers: a P2P failure before any byte still becomes a
  // clean upstream fallback with X-Damselfly-Source: upstream.
  let first: IteratorResult<Uint8Array> | undefined
  if (size > 0) {
    try {
      first = await body.next()
    } catch (err) {
      if (r.signal.aborted) return
      deps.logger.warn({ digest, reason: 'p2p_failed', err: err instanceof Error ? err.message : String(err) }, 'P2P failed before the first byte, fetching from upstream')
      await serveUpstream(deps, r, 'p2p_failed')
      return
    }
  }
  blobHeaders(res, digest, 'p2p', range.type === 'partial' ? { start, end, size } : undefined, end - start + 1)
  async function * all (): AsyncGenerator<Uint8Array> {
    if (first !== undefined && first.done !== true) {
      const chunk = first.value
      first = undefined // a whole piece: do not pin it for the rest of the response
      yield chunk
    }
    yield * body
  }
  // The header says where the response started; the metric follows each byte's real origin.
  await pipeline(Readable.from(holdLast(all(), end - start + 1), { objectMode: false }), new ByteCounter(deps, r, 'p2p', { start, upstreamFrom }), res, { signal: r.signal })
}

/** Direct fetch from the upstream, relaying its answer; a full 200 is still checked against the digest. */
async function serveUpstream (deps: BlobHandlerDeps, r: BlobRequest, reason: string | undefined): Promise<void> {
  const { req, res, digest } = r
  if (reason !== undefined) deps.metrics.upstreamFallbacks.inc({ reason })
  const method = req.method === 'HEAD' ? 'HEAD' : 'GET'
  const headers = forwardedHeaders(req)
  const upstream = await deps.upstream.request(method, r.url, headers, r.signal)
  res.setHeader(SOURCE_HEADER, 'upstream')
  await deps.upstream.relay(upstream, res, r.signal, (source, status) => {
    const ok = status >= 200 && status < 300
    const counted = ok ? count(deps, r, source, 'upstream') : source
    return status === 200 && method === 'GET' ? holdLast(verifyDigest(counted, digest)) : counted
  }, method === 'GET' ? { url: r.url, headers } : undefined)
}

async function * count (deps: BlobHandlerDeps, r: BlobRequest, source: AsyncIterable<Uint8Array>, label: BlobSource): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    deps.metrics.blobBytesServed.inc({ source: label }, chunk.byteLength)
    r.res.locals.bytes = (r.res.locals.bytes as number | undefined ?? 0) + chunk.byteLength
    yield chunk
  }
}

/**
 * Passes `source` on, but holds back the chunk that completes `length` bytes (or, with no length, always
 * the latest chunk) until the source has finished. The P2P and upstream readers check the blob digest
 * only after their last chunk; had that chunk already gone out, the client would hold a complete body
 * (Content-Length satisfied) before the check could fail. Holding it turns a failure into a truncated
 * body. Costs nothing but the final chunk's wait for the check.
 */
async function * holdLast (source: AsyncIterable<Uint8Array>, length?: number): AsyncGenerator<Uint8Array> {
  let seen = 0
  let held: Uint8Array | undefined
  for await (const chunk of source) {
    if (held !== undefined) yield held
    seen += chunk.byteLength
    held = undefined
    if (length === undefined || seen >= length) held = chunk
    else yield chunk
  }
  if (held !== undefined) yield held
}

/**
 * Counts body bytes into `damselfly_blob_bytes_served_total{source}` and the access log as they pass.
 * A P2P response that fell back to the upstream mid-stream passes `switchAt`: bytes from the blob
 * offset `upstreamFrom()` on are counted as `upstream`, where they really came from.
 */
class ByteCounter extends Transform {
  readonly #served: { inc: (n: number) => void }
  readonly #upstream: { inc: (n: number) => void }
  readonly #switchAt: { start: number, upstreamFrom: () => number | undefined } | undefined
  readonly #res: Response
  #offset: number

  constructor (deps: BlobHandlerDeps, r: BlobRequest, label: BlobSource, switchAt?: { start: number, upstreamFrom: () => number | undefined }) {
    super()
    this.#served = deps.metrics.blobBytesServed.labels({ source: label })
    this.#upstream = deps.metrics.blobBytesServed.labels({ source: 'upstream' })
    this.#switchAt = switchAt
    this.#res = r.res
    this.#offset = switchAt?.start ?? 0
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const from = this.#switchAt?.upstreamFrom()
    const own = from === undefined ? chunk.byteLength : Math.min(chunk.byteLength, Math.max(0, from - this.#offset))
    if (own > 0) this.#served.inc(own)
    if (own < chunk.byteLength) this.#upstream.inc(chunk.byteLength - own)
    this.#offset += chunk.byteLength
    this.#res.locals.bytes = (this.#res.locals.bytes as number | undefined ?? 0) + chunk.byteLength
    callback(null, chunk)
  }
}
