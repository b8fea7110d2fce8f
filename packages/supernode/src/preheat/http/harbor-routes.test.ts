import { createHash } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiPaths } from '@damselfly/proto'
import { blob, serveBytes, startFakeUpstream, type FakeUpstream, type Route } from '../../test-support/fake-upstream.js'
import { startTestSupernode } from '../../test-support/running-supernode.js'
import type { Supernode } from '../../supernode.js'

// Harbor's requests against a real (in-process) supernode whose upstream is a small fake registry:
// routing, auth, validation and reply shapes. The integration test replays them against real processes.

const TOKEN = 'preheat-secret'
const CLUSTER = 'cluster-secret'
const PEER = '12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const config = blob(64)
const layer = blob(1000)
const manifestBody = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { digest: config.digest, size: 64 }, layers: [{ digest: layer.digest, size: 1000 }] }))
const manifestDigest = `sha256:${createHash('sha256').update(manifestBody).digest('hex')}`
// For the shared-fetch test: a layer whose body starts late, so a pull's fetch is still running when the preheat joins it.
const slowLayer = blob(2000)
const sharedManifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { digest: config.digest, size: 64 }, layers: [{ digest: slowLayer.digest, size: 2000 }] }))
const serveManifest: Route = (res, headers) => {
  if (headers.authorization !== 'Bearer harbor-jwt') { res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end(); return }
  res.writeHead(200, { 'content-type': OCI_MANIFEST }).end(manifestBody)
}

let upstream: FakeUpstream
let sn: Supernode
let stop: () => Promise<void>

async function call (method: string, path: string, opts: { body?: string, headers?: Record<string, string> } = {}): Promise<{ status: number, json: any, type: string }> {
  const res = await fetch(`${sn.httpUrl}${path}`, { method, headers: { accept: 'application/json', ...(opts.body === undefined ? {} : { 'content-type': 'application/json' }), ...opts.headers }, ...(opts.body === undefined ? {} : { body: opts.body }) })
  const text = await res.text()
  let json: unknown = text
  try { json = JSON.parse(text) } catch { /* plain text replies */ }
  return { status: res.status, json, type: res.headers.get('content-type') ?? '' }
}
const bearer = { authorization: `Bearer ${TOKEN}` }

/** Harbor ≥ 2.12's body, byte for byte (Go's field order, `null` cluster ids, zero timeouts). */
const harborBody = (url: string, scope = ''): string =>
  `{"type":"preheat","args":{"type":"image","url":"${url}","tag":"","filtered_query_params":"","headers":{"Authorization":"Bearer harbor-jwt"},"scope":"${scope}","concurrent_count":0,"timeout":0},"scheduler_cluster_ids":null}`

async function pollUntilDone (id: number): Promise<any> {
  for (let i = 0; i < 200; i++) {
    const r = await call('GET', `/oapi/v1/jobs/${id}`, { headers: bearer })
    if (r.json.state !== 'PENDING') return r.json
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  throw new Error('job never finished')
}

beforeAll(async () => {
  upstream = await startFakeUpstream({
    '/v2/app/manifests/v1': serveManifest,
    [`/v2/app/manifests/${manifestDigest}`]: serveManifest,
    [`/v2/app/blobs/${config.digest}`]: serveBytes(config.data),
    [`/v2/app/blobs/${layer.digest}`]: serveBytes(layer.data),
    '/v2/app/manifests/shared': (res) => { res.writeHead(200, { 'content-type': OCI_MANIFEST }).end(sharedManifest) },
    [`/v2/app/blobs/${slowLayer.digest}`]: serveBytes(slowLayer.data, 1500)
  })
  // The fake registry is on loopback: reachable only through a --registry entry.
  const base = new URL(upstream.url('/'))
  ;({ sn, stop } = await startTestSupernode({ preheatToken: TOKEN, token: CLUSTER, registry: [`${base.host}=${base.origin}`] }))
})

afterAll(async () => {
  await stop()
  await upstream.close()
})

describe('current Dragonfly driver', () => {
  it('health needs the token: 401 with a stable code without it, "OK" with it', async () => {
    const denied = await call('GET', '/healthy')
    expect(denied.status).toBe(401)
    expect(denied.json.error.code).toBe('DF_ERR_PREHEAT_UNAUTHORIZED')
    expect((await call('GET', '/healthy', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401)
    const ok = await call('GET', '/healthy', { headers: bearer })
    expect(ok).toMatchObject({ status: 200, json: 'OK' })
    expect(ok.type).toMatch(/application\/json/)
  })

  it('creates a job from Harbor\'s exact body and reports SUCCESS with per-blob rows', async () => {
    const url = upstream.url('/v2/app/manifests/v1')
    const created = await call('POST', '/oapi/v1/jobs', { body: harborBody(url), headers: bearer })
    expect(created.status).toBe(200)
    expect(Number.isInteger(created.json.id)).toBe(true)
    expect(created.json.state).toBe('PENDING')
    expect(created.json.created_at).toMatch(/^\d{4}-\d\d-\d\dT/)
    expect(JSON.stringify(created.json)).not.toContain('harbor-jwt')
    const done = await pollUntilDone(created.json.id)
    expect(done.state).toBe('SUCCESS')
    expect(done.result.job_states[0].results[0].success_tasks.map((t: any) => t.url)).toEqual([config.digest, layer.digest].map(d => upstream.url(`/v2/app/blobs/${d}`)))
    expect(done.progress).toEqual({ blobs: { total: 2, done: 2 }, bytes: { total: 1064, done: 1064 }, peers: { total: 0, done: 0 } })
    expect(upstream.requests.filter(r => r.path.includes('/blobs/')).every(r => r.headers.authorization === 'Bearer harbor-jwt')).toBe(true)
  })

  it('FAILURE carries the registry\'s error for a missing tag', async () => {
    const created = await call('POST', '/oapi/v1/jobs', { body: harborBody(upstream.url('/v2/app/manifests/missing')), headers: bearer })
    const done = await pollUntilDone(created.json.id)
    expect(done.state).toBe('FAILURE')
    expect(done.result.job_states[0].error).toMatch(/^DF_ERR_UPSTREAM_REJECTED: registry 127\.0\.0\.1:\d+ answered 404/)
  })

  const invalid: Array<{ name: string, body: string, path: string }> = [
    { name: 'an unknown scope', body: harborBody('http://r/v2/a/manifests/t', 'everywhere'), path: 'body.args.scope' },
    { name: 'a file preheat', body: '{"type":"preheat","args":{"type":"file","url":"http://r/v2/a/manifests/t"}}', path: 'body.args.type' },
    { name: 'another job type', body: '{"type":"sync_peers","args":{"type":"image","url":"http://r/v2/a/manifests/t"}}', path: 'body.type' }
  ]
  for (const c of invalid) {
    it(`refuses ${c.name} with the path of the problem`, async () => {
      const r = await call('POST', '/oapi/v1/jobs', { body: c.body, headers: bearer })
      expect(r.status).toBe(400)
      expect(r.json.error.details.issues.map((i: any) => i.path)).toContain(c.path)
    })
  }

  it('refuses a URL that is not a manifest URL, and an unknown job id', async () => {
    const r = await call('POST', '/oapi/v1/jobs', { body: harborBody('https://r.example/v2/a/tags/list'), headers: bearer })
    expect(r).toMatchObject({ status: 400, json: { error: { code: 'DF_ERR_PREHEAT_URL_INVALID' } } })
    expect((await call('GET', '/oapi/v1/jobs/999999', { headers: bearer })).json.error.code).toBe('DF_ERR_PREHEAT_JOB_UNKNOWN')
    expect((await call('GET', '/oapi/v1/jobs/abc', { headers: bearer })).status).toBe(404)
  })
})

describe('the seed\'s single-flight fetch', () => {
  it('a pull and a preheat of the same blob fetch it from upstream once', async () => {
    const pull = call('POST', apiPaths.tasks, { body: JSON.stringify({ digest: slowLayer.digest, url: upstream.url(`/v2/app/blobs/${slowLayer.digest}`) }), headers: { authorization: `Bearer ${CLUSTER}` } })
    expect((await pull).status).toBe(200)
    const created = await call('POST', '/oapi/v1/jobs', { body: harborBody(upstream.url('/v2/app/manifests/shared')), headers: bearer })
    expect((await pollUntilDone(created.json.id)).state).toBe('SUCCESS')
    expect(upstream.requests.filter(r => r.path === `/v2/app/blobs/${slowLayer.digest}`)).toHaveLength(1)
  })
})

describe('legacy Dragonfly driver', () => {
  it('ping, create (201, string ID), status', async () => {
    expect(await call('GET', '/_ping', { headers: bearer })).toMatchObject({ status: 200, json: 'OK' })
    const body = `{"type":"image","url":"${upstream.url('/v2/app/manifests/v1')}","headers":{"Authorization":"Bearer harbor-jwt"},"image":"app","tag":"v1","digest":"${manifestDigest}"}`
    const created = await call('POST', '/preheats', { body, headers: bearer })
    expect(created.status).toBe(201)
    expect(created.json).toEqual({ ID: expect.stringMatching(/^\d+$/) })
    let status: any
    for (let i = 0; i < 200; i++) {
      status = (await call('GET', `/preheats/${created.json.ID as string}`, { headers: bearer })).json
      if (status.status === 'SUCCESS' || status.status === 'FAILED') break
      await new Promise(resolve => setTimeout(resolve, 20))
    }
    expect(status).toMatchObject({ ID: created.json.ID, status: 'SUCCESS', errorMsg: '' })
    // Pinned to the artifact digest Harbor named.
    expect(upstream.requests.some(r => r.path === `/v2/app/manifests/${manifestDigest}`)).toBe(true)
  })
})

describe('Kraken driver', () => {
  it('health, and a notification with Harbor\'s capitalised keys becomes a job', async () => {
    expect(await call('GET', '/health', { headers: bearer })).toMatchObject({ status: 200, json: 'OK\n' })
    const body = `{"Events":[{"Id":"0123456789abcdef0123456789abcdef","TimeStamp":"2026-08-21T06:00:00.123456789Z","Action":"push","Target":{"MediaType":"application/vnd.docker.distribution.manifest.v2+json","Digest":"${manifestDigest}","Repository":"app","Url":"${upstream.url('/v2/app/manifests/v1')}","Tag":"v1"},"Request":null,"Actor":null}]}`
    const r = await call('POST', '/registry/notifications', { body, headers: bearer })
    expect(r.status).toBe(200)
    expect(r.json.jobs).toHaveLength(1)
    // No registry token in a notification and no registryAuth here: the private manifest is refused.
    const done = await pollUntilDone(r.json.jobs[0])
    expect(done.state).toBe('FAILURE')
    expect(done.result.job_states[0].error).toContain('answered 401')
  })
})

describe('CUSTOM auth mode and the peer feed', () => {
  it('takes the token from a custom header when configured', async () => {
    const custom = await startTestSupernode({ preheatToken: TOKEN, preheatAuthHeader: 'api-key' })
    try {
      const res = async (headers: Record<string, string>): Promise<number> => (await fetch(`${custom.sn.httpUrl}/healthy`, { headers })).status
      expect(await res({ 'api-key': TOKEN })).toBe(200)
      expect(await res({ authorization: `Bearer ${TOKEN}` })).toBe(401)
      expect(await res({ 'api-key': 'nope' })).toBe(401)
    } finally {
      await custom.stop()
    }
  })

  it('the feed lives under /api/v1, behind the cluster token, not the preheat token', async () => {
    expect((await call('GET', `${apiPaths.preheatFeed(PEER)}?waitMs=0`, { headers: bearer })).status).toBe(401)
    const r = await call('GET', `${apiPaths.preheatFeed(PEER)}?waitMs=0&hostname=node-a`, { headers: { authorization: `Bearer ${CLUSTER}` } })
    expect(r.status).toBe(200)
    expect(r.json).toEqual({ version: expect.any(Number), preheats: [] })
    const report = await call('POST', apiPaths.preheatResults(PEER, '12345'), { body: JSON.stringify({ results: [{ digest: config.digest, ok: true }] }), headers: { authorization: `Bearer ${CLUSTER}` } })
    expect(report.status).toBe(204)
  })
})
