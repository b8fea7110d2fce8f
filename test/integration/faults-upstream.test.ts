import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, metricSum, metrics, rawHttp, repoRoot, runChecked, startDfclient, startRegistry, startSupernode, stopAllProcesses,
  type DamselflyProcess, type Registry
} from '../harness/index.js'
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.js'
import { pushedBlob, streamGet, type PushedBlob } from '../harness/faults.js'

// An upstream that fails — 5xx answers, connections reset mid-blob, bodies that stall — between the
// real registry and real Damselfly processes (a fault-injecting proxy), and a dfclient whose disk is
// full (a small tmpfs). Transient failures cost retries, not pulls; persistent ones end in a clean OCI
// error and never in a partial blob reported complete; a full disk costs the cache, not the pull.

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('fault tests need `npm run build` first')

const SPEC_CODES = ['BLOB_UNKNOWN', 'DENIED', 'NAME_INVALID', 'SIZE_INVALID', 'TOOMANYREQUESTS', 'UNAUTHORIZED', 'UNSUPPORTED']

describe.skipIf(!built)('faults: a failing upstream, a full disk', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let proxy: FaultProxy
  let supernode: DamselflyProcess
  let df: DamselflyProcess
  const registries = (): Array<{ host: string, url: string }> => [{ host: proxy.host, url: proxy.url }]
  const blobUrl = (d: DamselflyProcess, b: PushedBlob): string => `${d.httpUrl}/v2/upstream/app/blobs/${b.digest}`
  const gets = (b: PushedBlob): typeof proxy.requests => proxy.requests.filter(r => r.method === 'GET' && r.path.endsWith(b.digest))
  const isBlob = (b: PushedBlob) => (method: string, path: string): boolean => method === 'GET' && path.endsWith(`/blobs/${b.digest}`)

  beforeAll(async () => {
    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    proxy = await startFaultProxy(registry.url)
    cleanup.defer('fault proxy', proxy.stop)
    // A stall is noticed after 2 s without a byte (the default is 30 s).
    const timeouts = ['--upstream-timeout', '2s']
    supernode = await startSupernode({ dir: await cleanup.tempDir(), registries: registries(), extraArgs: timeouts })
    cleanup.defer('supernode', supernode.stop)
    df = await startDfclient({ dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries: registries(), extraArgs: timeouts })
    cleanup.defer('dfclient', df.stop)
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('503 twice, then 200: the seed retries with backoff and the pull succeeds without a fallback', async () => {
    const blob = await pushedBlob(registry, 'upstream/app', 'retry-503', 6 * MiB)
    proxy.add({ match: isBlob(blob), fault: { kind: 'status', status: 503 }, times: 2 })
    const fallbacks = metricSum(await metrics(df.httpUrl), 'damselfly_upstream_fallbacks_total')
    const pulled = await streamGet(blobUrl(df, blob))
    expect(pulled.digest).toBe(blob.digest)
    expect(pulled.headers['x-damselfly-source']).toBe('p2p')
    expect(gets(blob).map(r => r.status)).toEqual([503, 503, 200])
    expect(metricSum(await metrics(df.httpUrl), 'damselfly_upstream_fallbacks_total')).toBe(fallbacks)
  })

  test('connection reset mid-blob: the seed resumes with a Range request from where it broke, the bytes are right', async () => {
    const blob = await pushedBlob(registry, 'upstream/app', 'retry-reset', 12 * MiB)
    proxy.add({ match: isBlob(blob), fault: { kind: 'reset', afterBytes: 3 * MiB }, times: 1 })
    const pulled = await streamGet(blobUrl(df, blob))
    expect(pulled.error).toBeUndefined()
    expect(pulled.digest).toBe(blob.digest)
    const seen = gets(blob)
    expect(seen[0]?.fault).toBe('reset')
    const resumed = seen.find(r => r.range !== undefined)
    expect(resumed?.range, 'resumed with Range').toMatch(/^bytes=[1-9]\d*-\d+$/)
    expect(resumed?.status).toBe(206)
  })

  test('a stalled body: after the timeout the seed resumes with Range, the pull completes', async () => {
    const blob = await pushedBlob(registry, 'upstream/app', 'retry-stall', 10 * MiB)
    proxy.add({ match: isBlob(blob), fault: { kind: 'stall', afterBytes: 2 * MiB }, times: 1 })
    const started = Date.now()
    const pulled = await streamGet(blobUrl(df, blob))
    expect(pulled.error).toBeUndefined()
    expect(pulled.digest).toBe(blob.digest)
    expect(gets(blob).some(r => r.range !== undefined && r.status === 206)).toBe(true)
    // Bounded: one 2 s stall plus a short backoff, not a hang.
    expect(Date.now() - started).toBeLessThan(60_000)
  })

  test('503 on every try: bounded attempts, then a clean OCI error (JSON, spec code, 5xx); both processes alive', async () => {
    const blob = await pushedBlob(registry, 'upstream/app', 'always-503', 1 * MiB)
    proxy.add({ match: (_m, path) => path.endsWith(blob.digest), fault: { kind: 'status', status: 503 } })
    const r = await rawHttp(df.httpUrl, { path: `/v2/upstream/app/blobs/${blob.digest}`, timeoutMs: 60_000 })
    expect(r.status).toBe(503)
    expect(r.headers['content-type']).toMatch(/^application\/json/)
    expect(SPEC_CODES).toContain(r.json?.errors?.[0]?.code)
    const attempts = proxy.requests.filter(q => q.path.endsWith(blob.digest))
    // Supernode: 4 GETs; dfclient: 3 HEADs (proof of access) and 3 GETs (pass-through).
    expect(attempts.length).toBeGreaterThan(1)
    expect(attempts.length).toBeLessThanOrEqual(10)
    for (const p of [df, supernode]) expect((await rawHttp(p.httpUrl, { path: '/livez' })).status).toBe(200)
  })

  test('resets on every try: the seed gives up after bounded resumes, the client never gets a complete body, nothing is cached or marked done', async () => {
    const blob = await pushedBlob(registry, 'upstream/app', 'always-reset', 24 * MiB)
    proxy.add({ match: isBlob(blob), fault: { kind: 'reset', afterBytes: 1 * MiB } })
    const pulled = await streamGet(blobUrl(df, blob), { timeoutMs: 60_000 })
    expect(pulled.status).toBe(200)
    expect(pulled.bytes, 'a partial body, never reported complete').toBeLessThan(blob.size)
    expect(pulled.error).toBeDefined()
    const task = await request(`${supernode.httpUrl}/api/v1/tasks/${blob.digest}/pieces`)
    expect((await task.body.json() as { task: { state: string } }).task.state).toBe('failed')
    // Not cached: a HEAD is answered by the upstream (which fails), not locally.
    proxy.clear()
    const head = await request(blobUrl(df, blob), { method: 'HEAD' })
    await head.body.dump()
    expect(head.headers['x-damselfly-source']).not.toBe('local')
    // The upstream is healthy again: the next pull fetches and verifies it.
    expect((await streamGet(blobUrl(df, blob))).digest).toBe(blob.digest)
  })

  test('disk full: a dfclient whose data dir is an 8 MiB tmpfs serves a 24 MiB blob correctly, uncached, with a log line and a metric', async () => {
    const dir = await cleanup.tempDir()
    // The data dir (startDfclient uses DIR/data) is the small disk; the log stays outside it.
    const mnt = join(dir, 'data')
    await mkdir(mnt)
    await runChecked('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt])
    cleanup.defer('umount tmpfs', async () => { await runChecked('umount', ['-l', mnt]) })
    // --cache-size above the disk: the filesystem fills up, not the quota.
    const small = await startDfclient({ name: 'dfclient-full', dir, supernode: supernode.httpUrl, registries: registries(), extraArgs: ['--cache-size', '1GiB'] })
    cleanup.defer('dfclient on tmpfs', small.stop)
    const blob = await pushedBlob(registry, 'upstream/app', 'disk-full', 24 * MiB)
    const pulled = await streamGet(blobUrl(small, blob))
    expect(pulled.error).toBeUndefined()
    expect(pulled.digest).toBe(blob.digest)
    const m = await metrics(small.httpUrl)
    expect(metricSum(m, 'damselfly_cache_write_failures_total', { reason: 'disk_full' })).toBeGreaterThan(0)
    expect(small.process.lines('stdout').some(l => l.line.includes('piece not cached') && l.line.includes('disk_full'))).toBe(true)
    // Again: still served, still right.
    expect((await streamGet(blobUrl(small, blob))).digest).toBe(blob.digest)
  })
})
