import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { dfError, isDfError, parseDigest, pieceIndexAt, pieceRange, type PieceLayout } from '@damselfly/proto'
import type { CachedBlob } from '../storage/piece-cache.js'
import { blobHeaders, unsatisfiable, type BlobHandlerDeps, type BlobRequest, type BlobSource } from './blob-response.js'
import { parseRange } from './range.js'
import { bodySpan, resumableBody } from './upstream-retry.js'
import { forwardedHeaders } from './upstream.js'

/** True for the cache's "a piece failed its check before any of its bytes went out" error. */
function caughtAhead (err: unknown): boolean {
  return isDfError(err) && err.code === 'DF_ERR_PIECE_DIGEST_MISMATCH' && typeof err.details?.offset === 'number'
}

/**
 * Serves a cache hit. The file streams through the cache's verifying reader (every piece checked
 * before its bytes go out, and again as they stream) straight into the response, with backpressure
 * and the client's signal. Returns false, having sent nothing, when the entry vanished or its first
 * piece is corrupt (the cache dropped it): the caller then goes on as for a miss and refetches it.
 * A piece found corrupt later is dropped too, and the rest of the response comes from peers or the
 * upstream, checked against the piece digests the cache had: the client gets only good bytes.
 */
export async function serveLocal (deps: BlobHandlerDeps, r: BlobRequest, cached: CachedBlob): Promise<boolean> {
  const { req, res, digest } = r
  const size = cached.layout.size
  const range = parseRange(req.method === 'GET' ? req.headers.range : undefined, size)
  if (range.type === 'unsatisfiable') { unsatisfiable(res, size); return true }
  const start = range.type === 'partial' ? range.start : 0
  const end = range.type === 'partial' ? range.end : size - 1
  const partial = range.type === 'partial' ? { start, end, size } : undefined
  if (req.method === 'HEAD') {
    blobHeaders(res, digest, 'local', partial, end - start + 1)
    res.end()
    return true
  }
  let body: Readable
  try {
    body = deps.cache.readRange(digest, start, end, { signal: r.signal })
  } catch (err) {
    if (!isDfError(err) || err.code !== 'DF_ERR_PIECE_UNAVAILABLE') throw err
    return false
  }
  const chunks = body[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>
  let first: IteratorResult<Uint8Array> | undefined
  if (size > 0) {
    try {
      first = await chunks.next()
    } catch (err) {
      if (r.signal.aborted) return true
      if (!caughtAhead(err)) throw err
      corrupt(deps, r, err as Error, start)
      return false
    }
  }
  blobHeaders(res, digest, 'local', partial, end - start + 1)
  async function * all (): AsyncGenerator<Uint8Array> {
    let offset = start
    try {
      if (first !== undefined && first.done !== true) { offset += first.value.byteLength; count(deps, r, 'local', first.value.byteLength); yield first.value }
      first = undefined
      for (;;) {
        const next = await chunks.next()
        if (next.done === true) return
        offset += next.value.byteLength
        count(deps, r, 'local', next.value.byteLength)
        yield next.value
      }
    } catch (err) {
      if (r.signal.aborted || !caughtAhead(err)) throw err
      corrupt(deps, r, err as Error, offset)
    }
    yield * refetch(deps, r, cached, offset, end)
  }
  await pipeline(Readable.from(all(), { objectMode: false }), res, { signal: r.signal })
  return true
}

function corrupt (deps: BlobHandlerDeps, r: BlobRequest, err: Error, offset: number): void {
  deps.metrics.cacheCorruptPieces.inc()
  deps.logger.warn({ taskId: r.digest, offset, err: err.message }, 'cached piece failed verification; entry dropped, fetching the blob again')
}

function count (deps: BlobHandlerDeps, r: BlobRequest, source: BlobSource, n: number): void {
  deps.metrics.blobBytesServed.inc({ source }, n)
  r.res.locals.bytes = (r.res.locals.bytes as number | undefined ?? 0) + n
}

/**
 * Bytes `[from, end]` of a blob whose cache entry was just dropped: through a new P2P download when
 * one opens, else straight from the upstream (Range). Whole pieces are fetched (from the start of
 * the piece holding `from` to the end of the one holding `end`) and each is checked against the digest
 * the cache had before any of its bytes are released — one piece held in memory at a time, on this
 * rare path only.
 */
async function * refetch (deps: BlobHandlerDeps, r: BlobRequest, cached: CachedBlob, from: number, end: number): AsyncGenerator<Uint8Array> {
  const { layout } = cached
  const fetchFrom = pieceRange(layout, pieceIndexAt(layout, from)).start
  const fetchTo = pieceRange(layout, pieceIndexAt(layout, end)).end - 1
  let source: AsyncIterable<Uint8Array> | undefined
  let label: BlobSource = 'p2p'
  if (deps.openDownload !== undefined) {
    try {
      const authorization = r.req.headers.authorization
      const { download } = await deps.openDownload(authorization === undefined ? { digest: r.digest, url: r.url } : { digest: r.digest, url: r.url, authorization }, r.signal)
      source = download.read({ start: fetchFrom, end: fetchTo }, r.signal)
    } catch (err) {
      if (r.signal.aborted) throw err
    }
  }
  if (source === undefined) {
    label = 'upstream'
    const headers = forwardedHeaders(r.req, { range: `bytes=${fetchFrom}-${fetchTo}` })
    const res = await deps.upstream.request('GET', r.url, headers, r.signal)
    if (res.statusCode !== 206 || bodySpan(res)?.start !== fetchFrom) {
      await res.body.dump()
      throw dfError('DF_ERR_UPSTREAM_REJECTED', `upstream answered ${res.statusCode} to bytes ${fetchFrom}-${fetchTo} of ${r.digest}`, { details: { status: res.statusCode } })
    }
    source = resumableBody(res, { signal: r.signal, delayMs: 250, reopen: async (range) => await deps.upstream.request('GET', r.url, { ...headers, range }, r.signal) })
  }
  for await (const piece of checkedPieces(source, fetchFrom, fetchTo, layout, cached.pieces)) {
    const part = piece.bytes.subarray(Math.max(0, from - piece.start), Math.min(piece.bytes.byteLength, end + 1 - piece.start))
    if (part.byteLength === 0) continue
    count(deps, r, label, part.byteLength)
    yield part
  }
}

/** Collects `source` (bytes `[from, to]`, whole pieces) into pieces, each checked against `pieces`. */
async function * checkedPieces (source: AsyncIterable<Uint8Array>, from: number, to: number, layout: PieceLayout, pieces: ReadonlyMap<number, string>): AsyncGenerator<{ start: number, bytes: Buffer }> {
  let index = pieceIndexAt(layout, from)
  let held: Uint8Array[] = []
  let heldBytes = 0
  for await (const chunk of source) {
    let pos = 0
    while (pos < chunk.byteLength) {
      const piece = pieceRange(layout, index)
      const take = Math.min(chunk.byteLength - pos, piece.length - heldBytes)
      held.push(chunk.subarray(pos, pos + take))
      heldBytes += take
      pos += take
      if (heldBytes < piece.length) continue
      const bytes = Buffer.concat(held)
      held = []
      heldBytes = 0
      const expected = pieces.get(index)
      const algorithm = parseDigest(expected ?? 'sha256:' + '0'.repeat(64)).algorithm
      const actual = `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}`
      if (actual !== expected) throw dfError('DF_ERR_PIECE_DIGEST_MISMATCH', `refetched piece ${index} hashed to ${actual}, expected ${expected ?? '(none)'}`)
      yield { start: piece.start, bytes }
      index++
    }
  }
  if (heldBytes > 0 || index <= pieceIndexAt(layout, to)) throw dfError('DF_ERR_SIZE_MISMATCH', `refetch ended before piece ${index} was complete`)
}
