import { randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import { dfError, layoutFor, pieceRange, sha256Of, type PiecesResponse, type TaskInfo } from '@damselfly/proto'
import { openBlobDownload, type BlobDownload } from '../download/blob-download.js'
import { createMetrics } from '../metrics.js'
import { MemoryPieceCache } from '../storage/memory-piece-cache.js'
import { buildMirrorApp } from './app.js'
import type { DownloadOpener } from './blob-handler.js'
import { UpstreamClient } from './upstream.js'

const blob = new Uint8Array(randomBytes(6 * 1024 * 1024 + 7))
const digest = sha256Of(blob)
const layout = layoutFor(blob.byteLength)
const task: TaskInfo = { taskId: digest, digest, size: blob.byteLength, pieceSize: layout.pieceSize, pieceCount: layout.pieceCount, state: 'succeeded' }

/** A tiny upstream registry recording what it was sent. */
function startUpstream (seen: IncomingMessage[]): Promise<Server> {
  const server = createServer((req, res) => {
    seen.push(req)
    if (req.url?.startsWith('/v2/private/') === true || req.url === '/v2/') {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://auth/token",service="reg"', 'content-type': 'application/json', 'docker-distribution-api-version': 'registry/2.0' })
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}')
      return
    }
    if (req.url?.startsWith(`/v2/library/app/blobs/${digest}`) === true) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.byteLength, 'docker-content-digest': digest })
      res.end(req.method === 'HEAD' ? undefined : blob)
      return
    }
    if (req.url?.startsWith('/v2/library/app/manifests/') === true) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': 'sha256:' + 'b'.repeat(64), 'oci-subject': 'x' })
      res.end('{"schemaVersion":2}')
      return
    }
    res.writeHead(404).end()
  })
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => { resolve(server) }))
}

const sharedCache = new MemoryPieceCache()

type Opener = (...args: Parameters<DownloadOpener>) => Promise<BlobDownload>

const p2pOpener: Opener = async (request, signal) => await openBlobDownload({ ...request, selfPeerId: 'QmSelf' }, {
  tasks: {
    registerTask: async () => task,
    pollPieces: async (): Promise<PiecesResponse> => ({ task, version: 1, pieces: Array.from({ length: layout.pieceCount }, (_, index) => { const r = pieceRange(layout, index); return { index, digest: sha256Of(blob.subarray(r.start, r.end)), sources: [{ peerId: 'QmSeed', addrs: [], seed: true }] } }) }),
    reportPieces: () => {}
  },
  fetcher: { fetchPiece: async (_s, req) => { const r = pieceRange(layout, req.index); return blob.slice(r.start, r.end) } },
  cache: sharedCache,
  upstream: async () => { throw new Error('no upstream') }
}, signal)


describe('mirror app', () => {
  const seen: IncomingMessage[] = []
  let upstreamServer: Server
  let registries: Map<string, string>
  const metrics = createMetrics('test')
  async function servedBySource (): Promise<{ local: number, p2p: number, upstream: number }> {
    const metric = await metrics.registry.getSingleMetric('damselfly_blob_bytes_served_total')?.get()
    const out = { local: 0, p2p: 0, upstream: 0 }
    for (const v of metric?.values ?? []) out[v.labels.source as keyof typeof out] = v.value
    return out
  }
  const upstream = new UpstreamClient()
  let opener: Opener | undefined
  let mirror: Server
  let continuedAt: number | undefined
  let base: string

  beforeAll(async () => {
    upstreamServer = await startUpstream(seen)
    const up = `http://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`
    registries = new Map([['reg.test', up]])
    const app = buildMirrorApp({
      logger: pino({ level: 'silent' }), metrics, cache: sharedCache, upstream, registries, defaultRegistry: 'reg.test',
      openDownload: async (r, s) => {
        if (opener === undefined) throw new Error('no opener')
        const download = await opener(r, s)
        return { download, upstreamFrom: () => continuedAt }
      },
      isReady: () => true
    })
    mirror = await new Promise(resolve => { const s = app.listen(0, '127.0.0.1', () => { resolve(s) }) })
    base = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    mirror.closeAllConnections(); upstreamServer.closeAllConnections()
    await new Promise(resolve => mirror.close(resolve))
    await new Promise(resolve => upstreamServer.close(resolve))
    await upstream.close()
  })

  it('passes /v2/ through, relaying 401 and WWW-Authenticate', async () => {
    const res = await fetch(`${base}/v2/`, { headers: { authorization: 'Bearer abc' } })
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toContain('Bearer realm=')
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0')
    expect(seen.at(-1)?.headers.authorization).toBe('Bearer abc')
  })

  it('forwards repeated Accept headers as sent and drops only ns from the query', async () => {
    const { request } = await import('undici')
    const res = await request(`${base}/v2/library/app/manifests/latest?ns=reg.test&x=1`, { headers: ['accept', 'application/a', 'accept', 'application/b'] })
    expect(res.statusCode).toBe(200)
    expect(res.headers['oci-subject']).toBe('x')
    expect(await res.body.text()).toBe('{"schemaVersion":2}')
    const req = seen.at(-1) as IncomingMessage
    expect(req.url).toBe('/v2/library/app/manifests/latest?x=1')
    expect(req.headersDistinct.accept).toEqual(['application/a', 'application/b'])
  })

  it('falls back to the upstream when the supernode is unavailable', async () => {
    opener = async () => { throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', 'down') }
    const res = await fetch(`${base}/v2/library/app/blobs/${digest}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-damselfly-source')).toBe('upstream')
    expect(sha256Of(new Uint8Array(await res.arrayBuffer()))).toBe(digest)
    expect((await metrics.registry.getSingleMetricAsString('damselfly_upstream_fallbacks_total'))).toContain('reason="supernode_unavailable"} 1')
  })

  it('relays the upstream answer when the supernode reports DF_ERR_UPSTREAM_REJECTED', async () => {
    opener = async () => { throw dfError('DF_ERR_UPSTREAM_REJECTED', 'rejected', { details: { status: 401 } }) }
    const res = await fetch(`${base}/v2/private/img/blobs/${digest}`)
    expect(res.status).toBe(401)
    expect(res.headers.get('www-authenticate')).toContain('realm=')
    expect(res.headers.get('x-damselfly-source')).toBe('upstream')
  })

  it('counts bytes that came from the upstream after a mid-stream P2P failure as upstream', async () => {
    const data = new Uint8Array(randomBytes(10 * 1024 * 1024))
    const d = sha256Of(data)
    const l = layoutFor(data.byteLength)
    const t: TaskInfo = { taskId: d, digest: d, size: data.byteLength, pieceSize: l.pieceSize, pieceCount: l.pieceCount, state: 'succeeded' }
    const before = await servedBySource()
    opener = async (request, signal) => await openBlobDownload({ ...request, selfPeerId: 'QmSelf', pollWaitMs: 20, maxRounds: 1 }, {
      tasks: {
        registerTask: async () => t,
        pollPieces: async (): Promise<PiecesResponse> => ({ task: t, version: 1, pieces: Array.from({ length: l.pieceCount }, (_, index) => { const r = pieceRange(l, index); return { index, digest: sha256Of(data.subarray(r.start, r.end)), sources: [{ peerId: 'QmSeed', addrs: [], seed: true }] } }) }),
        reportPieces: () => {}
      },
      fetcher: { fetchPiece: async (_s, req) => { if (req.index > 0) throw dfError('DF_ERR_PROTOCOL', 'peer went away'); const r = pieceRange(l, req.index); return data.slice(r.start, r.end) } },
      cache: new MemoryPieceCache(),
      upstream: async (range) => (async function * () { yield data.slice(range.start, range.end + 1) })(),
      events: { upstreamContinuation: ({ offset }) => { continuedAt = offset } }
    }, signal)
    try {
      const res = await fetch(`${base}/v2/library/midstream/blobs/${d}`)
      expect(res.headers.get('x-damselfly-source')).toBe('p2p')
      expect(sha256Of(new Uint8Array(await res.arrayBuffer()))).toBe(d)
      const after = await servedBySource()
      expect(continuedAt).toBe(l.pieceSize)
      expect(after.p2p - before.p2p).toBe(l.pieceSize)
      expect(after.upstream - before.upstream).toBe(data.byteLength - l.pieceSize)
    } finally {
      continuedAt = undefined
    }
  })

  it('serves a blob over P2P, then ranges, 416, and a local hit', async () => {
    opener = p2pOpener
    const res = await fetch(`${base}/v2/library/app/blobs/${digest}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-damselfly-source')).toBe('p2p')
    expect(res.headers.get('docker-content-digest')).toBe(digest)
    expect(res.headers.get('content-length')).toBe(String(blob.byteLength))
    expect(sha256Of(new Uint8Array(await res.arrayBuffer()))).toBe(digest)

    const ranged = await fetch(`${base}/v2/library/app/blobs/${digest}`, { headers: { range: 'bytes=500-1499' } })
    expect(ranged.status).toBe(206)
    expect(ranged.headers.get('content-range')).toBe(`bytes 500-1499/${blob.byteLength}`)
    expect(Buffer.from(await ranged.arrayBuffer()).equals(Buffer.from(blob.subarray(500, 1500)))).toBe(true)
    expect(ranged.headers.get('x-damselfly-source')).toBe('local')

    const bad = await fetch(`${base}/v2/library/app/blobs/${digest}`, { headers: { range: `bytes=${blob.byteLength}-` } })
    expect(bad.status).toBe(416)
    expect(bad.headers.get('content-range')).toBe(`bytes */${blob.byteLength}`)
    await bad.arrayBuffer()

    const head = await fetch(`${base}/v2/library/app/blobs/${digest}`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('x-damselfly-source')).toBe('local')
    expect(head.headers.get('content-length')).toBe(String(blob.byteLength))

    const local = await fetch(`${base}/v2/library/app/blobs/${digest}`)
    expect(local.headers.get('x-damselfly-source')).toBe('local')
    expect(sha256Of(new Uint8Array(await local.arrayBuffer()))).toBe(digest)
  })

  it('never completes a P2P body whose blob digest fails: the last chunk waits for the check', async () => {
    // The 7-byte last piece arrives once the first is on the wire and goes out in one socket write, so
    // without the hold-back the client would already hold the whole body when the digest check fails.
    const data = new Uint8Array(randomBytes(4 * 1024 * 1024 + 7))
    const claimed = sha256Of(new Uint8Array(data.byteLength))
    const l = layoutFor(data.byteLength)
    const t: TaskInfo = { taskId: claimed, digest: claimed, size: data.byteLength, pieceSize: l.pieceSize, pieceCount: l.pieceCount, state: 'succeeded' }
    opener = async (request, signal) => await openBlobDownload({ ...request, selfPeerId: 'QmSelf' }, {
      tasks: {
        registerTask: async () => t,
        pollPieces: async (_d, since): Promise<PiecesResponse> => {
          // A real long poll waits; answering at once would spin the poll loop and starve the timer below.
          if (since > 0) await new Promise(resolve => setTimeout(resolve, 50))
          return { task: t, version: 1, pieces: Array.from({ length: l.pieceCount }, (_, index) => ({ index, digest: 'sha256:' + '0'.repeat(64), sources: [{ peerId: 'QmSeed', addrs: [], seed: true }] })) }
        },
        reportPieces: () => {}
      },
      fetcher: {
        fetchPiece: async (_s, req) => {
          if (req.index === l.pieceCount - 1) await new Promise(resolve => setTimeout(resolve, 200))
          const r = pieceRange(l, req.index)
          return data.slice(r.start, r.end)
        }
      },
      cache: new MemoryPieceCache(),
      upstream: async () => { throw new Error('no upstream') }
    }, signal)
    const res = await fetch(`${base}/v2/library/app/blobs/${claimed}`)
    expect(res.status).toBe(200)
    expect(res.headers.get('x-damselfly-source')).toBe('p2p')
    await expect(res.arrayBuffer()).rejects.toThrow()
  })

  it('answers OCI errors for bad names, digests and methods', async () => {
    const name = await fetch(`${base}/v2/UPPER/manifests/latest`)
    expect(name.status).toBe(400)
    expect(await name.json()).toMatchObject({ errors: [{ code: 'NAME_INVALID' }] })
    const dig = await fetch(`${base}/v2/a/blobs/sha256:zz`)
    expect(dig.status).toBe(400)
    expect(await dig.json()).toMatchObject({ errors: [{ code: 'DIGEST_INVALID' }] })
    const put = await fetch(`${base}/v2/a/manifests/latest`, { method: 'PUT', body: '{}' })
    expect(put.status).toBe(405)
    expect(await put.json()).toMatchObject({ errors: [{ code: 'UNSUPPORTED' }] })
    expect((await fetch(`${base}/livez`)).status).toBe(200)
    expect(await (await fetch(`${base}/metrics`)).text()).toContain('damselfly_build_info{version="test"} 1')
  })

  it('answers 502 when the upstream is unreachable', async () => {
    registries.set('reg.test', 'http://127.0.0.1:1')
    try {
      const res = await fetch(`${base}/v2/library/app/manifests/latest`)
      expect(res.status).toBe(502)
      expect(await res.json()).toHaveProperty('errors')
    } finally {
      registries.set('reg.test', `http://127.0.0.1:${(upstreamServer.address() as AddressInfo).port}`)
    }
  })
})
