import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { API_LIMITS, apiPaths, dfError } from '@damselfly/proto'
import { startTestSupernode } from '../test-support/running-supernode.js'

const PEER = '12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const DIGEST = `sha256:${'c'.repeat(64)}`
let base: string
let stop: () => Promise<void>

async function call (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number, json: any }> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) })
  })
  const text = await res.text()
  return { status: res.status, json: text === '' ? undefined : (() => { try { return JSON.parse(text) } catch { return text } })() }
}

describe('peer API over HTTP', () => {
  beforeAll(async () => {
    // The fake upstream refuses everything with 404, so register tests hit the error path.
    const t = await startTestSupernode({}, {
      fetchUpstream: async () => { throw dfError('DF_ERR_UPSTREAM_REJECTED', 'upstream answered 404', { details: { status: 404 } }) }
    })
    base = t.sn.httpUrl
    stop = t.stop
  })
  afterAll(async () => { await stop() })

  it('serves probes and metrics', async () => {
    expect((await call('GET', '/livez')).status).toBe(200)
    expect((await call('GET', '/readyz')).status).toBe(200)
    const metrics = await call('GET', '/metrics')
    for (const name of ['damselfly_upstream_bytes_total', 'damselfly_piece_bytes_uploaded_total', 'damselfly_peers', 'damselfly_tasks', 'damselfly_build_info{version=', 'process_cpu_user_seconds_total']) {
      expect(metrics.json).toContain(name)
    }
  })

  it('announce, heartbeat, leave', async () => {
    const announce = await call('POST', apiPaths.peers, { peerId: PEER, addrs: ['/ip4/127.0.0.1/tcp/1'], hostname: 'node-a' })
    expect(announce.status).toBe(200)
    expect(announce.json).toMatchObject({ peerId: PEER, heartbeatIntervalMs: 10_000, ttlMs: 35_000 })
    expect(announce.json.supernode.peerId).toMatch(/^12D3KooW/)
    expect(announce.json.supernode.addrs[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/)
    expect((await call('POST', apiPaths.heartbeat(PEER))).status).toBe(204)
    expect((await call('GET', '/metrics')).json).toMatch(/^damselfly_peers 1$/m)
    expect((await call('DELETE', apiPaths.peer(PEER))).status).toBe(204)
    const hb = await call('POST', apiPaths.heartbeat(PEER))
    expect(hb.status).toBe(404)
    expect(hb.json.error.code).toBe('DF_ERR_PEER_UNKNOWN')
  })

  const bad = [
    { name: 'announce without addrs', method: 'POST', path: apiPaths.peers, body: { peerId: PEER, hostname: 'x' }, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'unknown field', method: 'POST', path: apiPaths.peers, body: { peerId: PEER, addrs: ['/ip4/1.1.1.1/tcp/1'], hostname: 'x', extra: 1 }, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'malformed JSON', method: 'POST', path: apiPaths.peers, body: '{"peerId":', status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'body too large', method: 'POST', path: apiPaths.peers, body: JSON.stringify({ pad: 'x'.repeat(API_LIMITS.maxBodyBytes + 10) }), status: 413, code: 'DF_ERR_BODY_TOO_LARGE' },
    { name: 'bad digest in path', method: 'GET', path: apiPaths.pieces('sha256:nope'), body: undefined, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'bad waitMs', method: 'GET', path: `${apiPaths.pieces(DIGEST)}?waitMs=999999`, body: undefined, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'unknown task', method: 'GET', path: apiPaths.pieces(DIGEST), body: undefined, status: 404, code: 'DF_ERR_TASK_UNKNOWN' },
    { name: 'report on unknown task', method: 'POST', path: apiPaths.pieces(DIGEST), body: { peerId: PEER, pieces: [0] }, status: 404, code: 'DF_ERR_TASK_UNKNOWN' },
    { name: 'register with non-http url', method: 'POST', path: apiPaths.tasks, body: { digest: DIGEST, url: 'ftp://x/y' }, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'upstream rejection', method: 'POST', path: apiPaths.tasks, body: { digest: DIGEST, url: 'http://127.0.0.1:9/v2/x/blobs/y' }, status: 502, code: 'DF_ERR_UPSTREAM_REJECTED' },
    { name: 'unknown route', method: 'GET', path: '/api/v1/nothing', body: undefined, status: 404, code: 'DF_ERR_NOT_FOUND' },
    { name: 'unknown top-level route', method: 'POST', path: '/x', body: undefined, status: 404, code: 'DF_ERR_NOT_FOUND' }
  ]
  for (const c of bad) {
    it(`rejects: ${c.name}`, async () => {
      const r = await call(c.method, c.path, c.body)
      expect(r.status).toBe(c.status)
      expect(r.json.error.code).toBe(c.code)
      expect(typeof r.json.error.message).toBe('string')
    })
  }

  it('lists every validation issue', async () => {
    const r = await call('POST', apiPaths.peers, { peerId: '0OIl', addrs: 'x' })
    expect(r.json.error.details.issues.map((i: { path: string }) => i.path).sort()).toEqual(['body.addrs', 'body.hostname', 'body.peerId'])
  })
})

describe('token auth', () => {
  let url: string
  let stopAuth: () => Promise<void>
  beforeAll(async () => {
    const t = await startTestSupernode({ token: 's3cret' })
    url = t.sn.httpUrl
    stopAuth = t.stop
  })
  afterAll(async () => { await stopAuth() })

  it('requires the bearer token on /api/v1 only', async () => {
    const body = JSON.stringify({ peerId: PEER, addrs: ['/ip4/127.0.0.1/tcp/1'], hostname: 'a' })
    const headers = { 'content-type': 'application/json' }
    const none = await fetch(`${url}${apiPaths.peers}`, { method: 'POST', headers, body })
    expect(none.status).toBe(401)
    expect(((await none.json()) as any).error.code).toBe('DF_ERR_UNAUTHORIZED')
    const wrong = await fetch(`${url}${apiPaths.peers}`, { method: 'POST', headers: { ...headers, authorization: 'Bearer s3cre' }, body })
    expect(wrong.status).toBe(401)
    const right = await fetch(`${url}${apiPaths.peers}`, { method: 'POST', headers: { ...headers, authorization: 'Bearer s3cret' }, body })
    expect(right.status).toBe(200)
    expect((await fetch(`${url}/readyz`)).status).toBe(200)
  })
})
