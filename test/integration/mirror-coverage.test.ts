import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  BENCH_LAYER_SIZES, Cleanup, MiB, buildMultiArchImage, buildTestImage, freePort, hostOf, imageBlobs, layerBlob,
  metricSum, metrics, pushBlob, pushImage, pushMultiArch, rawHttp, repoRoot, sha256, skopeoCopy, startContainerd,
  startDfclient, startRegistry, startSupernode, stopAllProcesses, verifyImageDir, writeHostsToml, writeRegistriesConf,
  type BlobRef, type Containerd, type DamselflyProcess, type MultiArchImage, type Registry, type TestImage
} from '../harness/index.js'

// End-to-end coverage of the requirements beyond pull-through.test.ts: the benchmark image
// (1/32/256 MiB layers), a multi-arch index, Docker v2s2, bad input against the real processes, Range
// through the mirror, and a visible upstream fallback. One registry, one supernode, two dfclients
// (A for skopeo, B for ctr) and one dfclient whose supernode is a dead port; each test uses its own
// repository and images, so tests do not depend on each other's state.
// Everything asserted is bytes, counts and statuses; nothing depends on how long anything takes.

const SPEC_ERROR_CODES = [
  'BLOB_UNKNOWN', 'BLOB_UPLOAD_INVALID', 'BLOB_UPLOAD_UNKNOWN', 'DIGEST_INVALID', 'MANIFEST_BLOB_UNKNOWN',
  'MANIFEST_INVALID', 'MANIFEST_UNKNOWN', 'NAME_INVALID', 'NAME_UNKNOWN', 'SIZE_INVALID', 'UNAUTHORIZED',
  'DENIED', 'UNSUPPORTED', 'TOOMANYREQUESTS'
]
/** User agents of the real clients: a blob GET carrying one reached the registry without the mirror's P2P path. */
const CLIENT_UA = /skopeo|containers|containerd|ctr/i
const PULL_TIMEOUT_MS = 240_000
const SMALL_BLOB_SIZE = 2048

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('mirror coverage tests need `npm run build` first')

const blobBytes = (blobs: BlobRef[]): number => blobs.reduce((n, b) => n + b.size, 0)

async function fileSlice (path: string, start: number, end: number): Promise<Buffer> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(end - start + 1)
    const { bytesRead } = await fh.read(buf, 0, buf.length, start)
    return buf.subarray(0, bytesRead)
  } finally {
    await fh.close()
  }
}

describe.skipIf(!built)('mirror coverage: big layers, formats, bad input, ranges, fallback', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let supernode: DamselflyProcess
  let dfA: DamselflyProcess
  let dfB: DamselflyProcess
  let dfDead: DamselflyProcess
  let containerd: Containerd
  let hostsDir: string
  let bench: TestImage
  let multi: MultiArchImage
  let legacy: TestImage
  let smallBlob: BlobRef & { data: Buffer }
  let rangeBlob: BlobRef & { path: string }
  let fallbackBlob: BlobRef & { path: string }

  const registries = (): Array<{ host: string, url: string }> => [{ host: registry.host, url: registry.url }]

  /**
   * Waits until the registry's access log shows at least one blob GET for every digest since `mark`
   * (the registry writes a line once the response is finished, which can trail the client's last
   * byte), then returns the per-digest stats. Waiting for a condition, not asserting a duration.
   */
  async function upstreamGets (mark: number, digests: string[]): Promise<ReturnType<Registry['blobGets']>> {
    const deadline = Date.now() + 10_000
    for (;;) {
      const gets = registry.blobGets(mark)
      if (digests.every((d) => (gets.get(d)?.count ?? 0) > 0) || Date.now() > deadline) return gets
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }

  /** The registry's log lines for one blob since `mark`, for assertion messages. */
  const upstreamLog = (mark: number, digest: string): string => registry.accessLog().slice(mark)
    .filter((e) => e.path.endsWith(`/blobs/${digest}`))
    .map((e) => `${e.method} ${e.target} ${e.status} ${e.bytes} ${JSON.stringify(e.userAgent)}`).join('\n')

  /** Warnings and errors (pino level ≥ 40) the Damselfly processes logged, for assertion messages. */
  const damselflyWarnings = (): string => [supernode, dfA, dfB].flatMap((p) => p.process.lines('stdout')
    .filter((l) => /"level":(4|5|6)0\b/.test(l.line)).map((l) => `${p.process.name}: ${l.line.slice(0, 400)}`)).join('\n')

  /** Blob GETs since `mark` that the registry answered to skopeo or containerd directly. */
  const directClientBlobGets = (mark: number): string[] => registry.accessLog().slice(mark)
    .filter((e) => e.method === 'GET' && /\/blobs\//.test(e.path) && CLIENT_UA.test(e.userAgent))
    .map((e) => `${e.path} (${e.userAgent})`)

  beforeAll(async () => {
    // Default seed: the same layers as the benchmark (test/bench), so a machine generates them once.
    bench = await buildTestImage({ sizes: BENCH_LAYER_SIZES })
    multi = await buildMultiArchImage({ sizes: [1 * MiB, 2 * MiB], seed: 'coverage-multi' })
    legacy = await buildTestImage({ sizes: [1 * MiB, 2 * MiB], seed: 'coverage-v2s2' })
    const small = createHash('sha256').update('coverage-small-blob').digest()
    const smallData = Buffer.concat(Array.from({ length: SMALL_BLOB_SIZE / small.length }, (_, i) => createHash('sha256').update(small).update(String(i)).digest()))
    smallBlob = { digest: sha256(smallData), size: smallData.length, mediaType: 'application/octet-stream', data: smallData }
    // 12 MiB of content: four 4 MiB pieces, so a range can straddle piece boundaries.
    const r = await layerBlob('coverage-range', 0, 12 * MiB)
    rangeBlob = { digest: r.digest, size: r.size, mediaType: 'application/octet-stream', path: r.path }
    const f = await layerBlob('coverage-fallback', 0, 1 * MiB)
    fallbackBlob = { digest: f.digest, size: f.size, mediaType: 'application/octet-stream', path: f.path }

    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    await pushImage(registry, 'bench/app', 'v1', bench, 'oci')
    await pushMultiArch(registry, 'multi/app', 'v1', multi)
    await pushImage(registry, 'legacy/app', 'v1', legacy, 'docker')
    await pushBlob(registry, 'bad/input', smallBlob)
    await pushBlob(registry, 'range/app', rangeBlob)
    await pushBlob(registry, 'fallback/app', fallbackBlob)

    supernode = await startSupernode({ dir: await cleanup.tempDir(), registries: registries() })
    cleanup.defer('supernode', supernode.stop)
    const deadPort = await freePort()
    const dirs = [await cleanup.tempDir(), await cleanup.tempDir(), await cleanup.tempDir()]
    const started = async (p: Promise<DamselflyProcess>, name: string): Promise<DamselflyProcess> => {
      const df = await p
      cleanup.defer(name, df.stop)
      return df
    }
    // In parallel: each one spends most of its start-up loading modules.
    ;[dfA, dfB, dfDead] = await Promise.all([
      started(startDfclient({ name: 'dfclient-a', dir: dirs[0]!, supernode: supernode.httpUrl, registries: registries() }), 'dfclient A'),
      started(startDfclient({ name: 'dfclient-b', dir: dirs[1]!, supernode: supernode.httpUrl, registries: registries() }), 'dfclient B'),
      // Nothing listens on deadPort: every supernode call fails to connect.
      started(startDfclient({ name: 'dfclient-dead', dir: dirs[2]!, supernode: `http://127.0.0.1:${deadPort}`, registries: registries() }), 'dfclient with a dead supernode')
    ])

    const ctdDir = await cleanup.tempDir('dfctd-')
    containerd = await startContainerd({ dir: ctdDir })
    cleanup.defer('containerd', containerd.stop)
    hostsDir = await writeHostsToml(join(ctdDir, 'certs.d'), registry.host, { server: registry.url, mirrors: [dfB.httpUrl] })
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  /** skopeo through dfclient A (no `ns=`, default registry) into an OCI layout or a `dir:`. */
  async function skopeoViaA (ref: string, dest: 'oci' | 'dir', all = false): Promise<string> {
    const dir = await cleanup.tempDir()
    const conf = await writeRegistriesConf(dir, { host: registry.host, mirror: hostOf(dfA.httpUrl) })
    const out = join(dir, 'out')
    const r = await skopeoCopy({
      src: `${registry.host}/${ref}`,
      dest: dest === 'oci' ? `oci:${out}:pulled` : `dir:${out}`,
      registriesConf: conf,
      all,
      tmpDir: dir,
      timeoutMs: PULL_TIMEOUT_MS
    })
    expect(r.code, r.stderr).toBe(0)
    return out
  }

  test('benchmark image (1/32/256 MiB): skopeo via A and ctr via B, every blob upstream once, repeat on B served locally', async () => {
    const blobs = imageBlobs(bench)
    const digests = blobs.map((b) => b.digest)
    expect(BENCH_LAYER_SIZES).toEqual([1 * MiB, 32 * MiB, 256 * MiB])
    expect(bench.layers).toHaveLength(3)
    await containerd.reset()
    const mark = registry.mark()
    const fallbacks = async (): Promise<number[]> => (await Promise.all([metrics(dfA.httpUrl), metrics(dfB.httpUrl)]))
      .map((m) => metricSum(m, 'damselfly_upstream_fallbacks_total'))
    const fallbacksBefore = await fallbacks()
    const p2pBeforeB = metricSum(await metrics(dfB.httpUrl), 'damselfly_blob_bytes_served_total', { source: 'p2p' })

    const out = await skopeoViaA('bench/app:v1', 'oci')
    const verified = await verifyImageDir(out)
    for (const d of [...digests, bench.manifest.digest]) expect(verified).toContain(d)

    const pull = await containerd.pull(`${registry.host}/bench/app:v1`, { hostsDir, timeoutMs: PULL_TIMEOUT_MS })
    expect(pull.code, pull.stderr + pull.stdout).toBe(0)
    const content = await containerd.contentDigests()
    for (const d of [...digests, bench.manifest.digest]) expect(content).toContain(d)

    expect(await fallbacks(), `upstream fallbacks on A and B; warnings:\n${damselflyWarnings()}`).toEqual(fallbacksBefore)
    const gets = await upstreamGets(mark, digests)
    for (const b of blobs) {
      expect(gets.get(b.digest), `upstream GETs of ${b.digest} (${b.size} bytes):\n${upstreamLog(mark, b.digest)}`).toEqual({ count: 1, bytes: b.size })
    }
    expect(directClientBlobGets(mark)).toEqual([])
    const [mA, mB] = await Promise.all([metrics(dfA.httpUrl), metrics(dfB.httpUrl)])
    expect(metricSum(mA, 'damselfly_piece_verify_failures_total')).toBe(0)
    expect(metricSum(mB, 'damselfly_piece_verify_failures_total')).toBe(0)
    // ctr got every blob byte from B's P2P path (none from B's cache, none from the upstream).
    expect(metricSum(mB, 'damselfly_blob_bytes_served_total', { source: 'p2p' }) - p2pBeforeB).toBe(blobBytes(blobs))

    // Repeat on B from a cold containerd: every blob byte comes from B's cache, none from upstream.
    const before = metricSum(mB, 'damselfly_blob_bytes_served_total', { source: 'local' })
    await containerd.reset()
    const again = registry.mark()
    const repeat = await containerd.pull(`${registry.host}/bench/app:v1`, { hostsDir, timeoutMs: PULL_TIMEOUT_MS })
    expect(repeat.code, repeat.stderr + repeat.stdout).toBe(0)
    const after = metricSum(await metrics(dfB.httpUrl), 'damselfly_blob_bytes_served_total', { source: 'local' })
    expect(after - before).toBe(blobBytes(blobs))
    expect(await containerd.contentDigests()).toEqual(expect.arrayContaining(digests))
    expect([...registry.blobGets(again).keys()]).toEqual([])
    expect(directClientBlobGets(again)).toEqual([])
  })

  test('multi-arch index: skopeo --all via A and ctr --all-platforms via B, every manifest and blob verified, shared layer upstream once', async () => {
    const blobs = imageBlobs(...multi.images)
    const digests = blobs.map((b) => b.digest)
    const manifests = [multi.index.digest, ...multi.images.map((i) => i.manifest.digest)]
    const shared = multi.images[0]!.layers[0]!.digest
    expect(multi.images[1]!.layers[0]!.digest).toBe(shared)
    await containerd.reset()
    const mark = registry.mark()

    const out = await skopeoViaA('multi/app:v1', 'oci', true)
    const verified = await verifyImageDir(out)
    for (const d of [...manifests, ...digests]) expect(verified, `skopeo layout holds ${d}`).toContain(d)

    const pull = await containerd.pull(`${registry.host}/multi/app:v1`, { hostsDir, allPlatforms: true, timeoutMs: PULL_TIMEOUT_MS })
    expect(pull.code, pull.stderr + pull.stdout).toBe(0)
    const content = await containerd.contentDigests()
    for (const d of [...manifests, ...digests]) expect(content, `containerd holds ${d}`).toContain(d)

    // The manifests through the mirror, both request styles, are byte-identical to what was pushed.
    const pushed = [multi.index, ...multi.images.map((i) => i.manifest)]
    for (const m of pushed) {
      for (const query of ['', `?ns=${encodeURIComponent(registry.host)}`]) {
        const r = await rawHttp(dfB.httpUrl, { path: `/v2/multi/app/manifests/${m.digest}${query}`, headers: { accept: m.mediaType } })
        expect(r.status).toBe(200)
        expect(sha256(r.body)).toBe(m.digest)
      }
    }

    const gets = await upstreamGets(mark, digests)
    expect(gets.get(shared)?.count, 'upstream GETs of the shared layer').toBe(1)
    for (const b of blobs) expect(gets.get(b.digest)?.count, `upstream GETs of ${b.digest}:\n${upstreamLog(mark, b.digest)}`).toBe(1)
    expect(directClientBlobGets(mark)).toEqual([])
  })

  test('Docker v2s2 image: skopeo dir: via A keeps the v2s2 bytes, ctr via B verifies, every blob upstream once', async () => {
    const blobs = imageBlobs(legacy)
    const digests = blobs.map((b) => b.digest)
    await containerd.reset()
    const mark = registry.mark()

    const out = await skopeoViaA('legacy/app:v1', 'dir')
    const verified = await verifyImageDir(out)
    for (const d of digests) expect(verified).toContain(d)
    const manifest = await readFile(join(out, 'manifest.json'))
    expect(sha256(manifest)).toBe(legacy.docker.manifest.digest)
    expect(JSON.parse(manifest.toString('utf8')).mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json')

    const pull = await containerd.pull(`${registry.host}/legacy/app:v1`, { hostsDir, timeoutMs: PULL_TIMEOUT_MS })
    expect(pull.code, pull.stderr + pull.stdout).toBe(0)
    const content = await containerd.contentDigests()
    for (const d of [...digests, legacy.docker.manifest.digest]) expect(content).toContain(d)
    expect(content).not.toContain(legacy.manifest.digest)

    const gets = await upstreamGets(mark, digests)
    for (const b of blobs) expect(gets.get(b.digest)?.count, `upstream GETs of ${b.digest}:\n${upstreamLog(mark, b.digest)}`).toBe(1)
    expect(directClientBlobGets(mark)).toEqual([])
  })

  describe('bad input against the real processes', () => {
    const D = `sha256:${'a'.repeat(64)}`
    interface MirrorCase { name: string, method?: string, path: () => string, headers?: Record<string, string>, body?: string, status: number, code: string, contentRange?: () => string }
    const mirrorCases: MirrorCase[] = [
      { name: 'malformed digest (not hex)', path: () => '/v2/bad/input/blobs/sha256:xyz', status: 400, code: 'DIGEST_INVALID' },
      { name: 'malformed digest (short hex)', path: () => `/v2/bad/input/blobs/sha256:${'a'.repeat(63)}`, status: 400, code: 'DIGEST_INVALID' },
      { name: 'malformed digest (upper-case hex)', path: () => `/v2/bad/input/blobs/sha256:${'A'.repeat(64)}`, status: 400, code: 'DIGEST_INVALID' },
      { name: 'unsupported digest algorithm', path: () => `/v2/bad/input/blobs/md5:${'a'.repeat(32)}`, status: 400, code: 'DIGEST_INVALID' },
      { name: '.. traversal in a blob name', path: () => `/v2/bad/../../etc/blobs/${smallBlob.digest}`, status: 400, code: 'NAME_INVALID' },
      { name: '.. traversal before the name', path: () => '/v2/../v2/bad/input/manifests/v1', status: 400, code: 'NAME_INVALID' },
      { name: '%2e%2e traversal in a name', path: () => '/v2/bad/%2e%2e/%2e%2e/etc/manifests/v1', status: 400, code: 'NAME_INVALID' },
      { name: '%2F-encoded slash in a name', path: () => `/v2/bad%2Finput/blobs/${smallBlob.digest}`, status: 400, code: 'NAME_INVALID' },
      { name: 'upper-case name', path: () => '/v2/Bad/Input/manifests/v1', status: 400, code: 'NAME_INVALID' },
      { name: 'empty name component', path: () => '/v2/bad//input/manifests/v1', status: 400, code: 'NAME_INVALID' },
      { name: 'name longer than 255 characters', path: () => `/v2/${'a'.repeat(256)}/manifests/v1`, status: 400, code: 'NAME_INVALID' },
      { name: 'name longer than 255 characters in components', path: () => `/v2/${Array.from({ length: 32 }, () => 'abcdefgh').join('/')}/blobs/${D}`, status: 400, code: 'NAME_INVALID' },
      { name: 'invalid tag (leading dash)', path: () => '/v2/bad/input/manifests/-v1', status: 404, code: 'MANIFEST_UNKNOWN' },
      { name: 'invalid tag (129 characters)', path: () => `/v2/bad/input/manifests/${'t'.repeat(129)}`, status: 404, code: 'MANIFEST_UNKNOWN' },
      { name: 'invalid tag (percent escape)', path: () => '/v2/bad/input/manifests/v1%00', status: 404, code: 'MANIFEST_UNKNOWN' },
      { name: 'malformed digest as manifest reference', path: () => '/v2/bad/input/manifests/sha256:nothex', status: 404, code: 'MANIFEST_UNKNOWN' },
      { name: 'POST a manifest', method: 'POST', path: () => '/v2/bad/input/manifests/v1', body: '{}', status: 405, code: 'UNSUPPORTED' },
      { name: 'PUT a manifest', method: 'PUT', path: () => '/v2/bad/input/manifests/v1', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, body: '{"schemaVersion":2}', status: 405, code: 'UNSUPPORTED' },
      { name: 'DELETE a manifest', method: 'DELETE', path: () => `/v2/bad/input/manifests/${D}`, status: 405, code: 'UNSUPPORTED' },
      { name: 'DELETE a blob', method: 'DELETE', path: () => `/v2/bad/input/blobs/${smallBlob.digest}`, status: 405, code: 'UNSUPPORTED' },
      { name: 'POST a blob upload', method: 'POST', path: () => '/v2/bad/input/blobs/uploads/', status: 405, code: 'UNSUPPORTED' },
      { name: 'PATCH an upload session', method: 'PATCH', path: () => '/v2/bad/input/blobs/uploads/some-session', body: 'xx', status: 405, code: 'UNSUPPORTED' },
      {
        name: 'Range bytes=5000-10000 on a 2048-byte blob',
        path: () => `/v2/bad/input/blobs/${smallBlob.digest}`,
        headers: { range: 'bytes=5000-10000' },
        status: 416,
        code: 'SIZE_INVALID',
        contentRange: () => `bytes */${SMALL_BLOB_SIZE}`
      },
      { name: 'unknown path', path: () => '/nothing/here', status: 404, code: 'UNSUPPORTED' },
      { name: 'unknown route under /v2', path: () => '/v2/bad/input/nothing', status: 404, code: 'UNSUPPORTED' },
      { name: 'unknown blob (relayed from upstream)', path: () => `/v2/bad/input/blobs/${D}`, status: 404, code: 'BLOB_UNKNOWN' },
      { name: 'unknown tag (relayed from upstream)', path: () => '/v2/bad/input/manifests/no-such-tag', status: 404, code: 'MANIFEST_UNKNOWN' }
    ]

    test.each(mirrorCases)('mirror rejects: $name → $status $code', async (c) => {
      const r = await rawHttp(dfA.httpUrl, { method: c.method, path: c.path(), headers: c.headers, body: c.body })
      expect(r.status, r.body.toString('utf8').slice(0, 300)).toBe(c.status)
      expect(r.headers['content-type']).toMatch(/^application\/json/)
      expect(r.json?.errors, r.body.toString('utf8').slice(0, 300)).toBeInstanceOf(Array)
      expect(r.json.errors.length).toBeGreaterThan(0)
      expect(SPEC_ERROR_CODES).toContain(r.json.errors[0].code)
      expect(r.json.errors[0].code).toBe(c.code)
      expect(typeof r.json.errors[0].message).toBe('string')
      if (c.contentRange !== undefined) expect(r.headers['content-range']).toBe(c.contentRange())
      expect((await rawHttp(dfA.httpUrl, { path: '/livez' })).status).toBe(200)
    })

    // RFC 9110 §15.5.6: a 405 response MUST carry Allow. Checked apart from the table so a missing header
    // shows up as its own failure.
    test('every 405 from the mirror carries an Allow header listing GET', async () => {
      const missing: string[] = []
      for (const c of mirrorCases.filter((m) => m.status === 405)) {
        const r = await rawHttp(dfA.httpUrl, { method: c.method, path: c.path(), headers: c.headers, body: c.body })
        expect(r.status).toBe(405)
        if (!/\bGET\b/.test(String(r.headers.allow ?? ''))) missing.push(`${c.method ?? 'GET'} ${c.path()} → Allow: ${String(r.headers.allow)}`)
      }
      expect(missing).toEqual([])
    })

    const PEER = '12D3KooWCoverageAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
    const json = { 'content-type': 'application/json' }
    interface SupernodeCase { name: string, method: string, path: string, headers?: Record<string, string>, body?: string, status: number, code: string }
    const supernodeCases: SupernodeCase[] = [
      { name: 'invalid JSON', method: 'POST', path: '/api/v1/peers', headers: json, body: '{"peerId":', status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'JSON that is not an object', method: 'POST', path: '/api/v1/peers', headers: json, body: '[1,2,3]', status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'wrong types in an announce', method: 'POST', path: '/api/v1/peers', headers: json, body: JSON.stringify({ peerId: 42, addrs: '/ip4/127.0.0.1/tcp/1', hostname: true }), status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'wrong types in a task registration', method: 'POST', path: '/api/v1/tasks', headers: json, body: JSON.stringify({ digest: 7, url: ['http://x'] }), status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'unknown field in an announce', method: 'POST', path: '/api/v1/peers', headers: json, body: JSON.stringify({ peerId: PEER, addrs: ['/ip4/127.0.0.1/tcp/1'], hostname: 'h', admin: true }), status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'unknown field in a task registration', method: 'POST', path: '/api/v1/tasks', headers: json, body: JSON.stringify({ digest: D, url: 'http://127.0.0.1:1/v2/x/blobs/' + D, priority: 1 }), status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'non-http task URL', method: 'POST', path: '/api/v1/tasks', headers: json, body: JSON.stringify({ digest: D, url: 'file:///etc/passwd' }), status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'body that is not JSON', method: 'POST', path: '/api/v1/peers', headers: { 'content-type': 'text/plain' }, body: 'peerId=x', status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'bad digest in the pieces path', method: 'GET', path: '/api/v1/tasks/sha256:nope/pieces', status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'traversal as the digest', method: 'GET', path: '/api/v1/tasks/..%2F..%2Fetc%2Fpasswd/pieces', status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'bad digest in a piece report path', method: 'POST', path: '/api/v1/tasks/sha256:nope/pieces', headers: json, body: JSON.stringify({ peerId: PEER, pieces: [0] }), status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'unknown query parameter', method: 'GET', path: `/api/v1/tasks/${D}/pieces?debug=1`, status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'waitMs above the limit', method: 'GET', path: `/api/v1/tasks/${D}/pieces?since=0&waitMs=999999`, status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'body over 256 KiB', method: 'POST', path: '/api/v1/peers', headers: json, body: JSON.stringify({ peerId: PEER, addrs: ['/ip4/127.0.0.1/tcp/1'], hostname: 'x'.repeat(300 * 1024) }), status: 413, code: 'DF_ERR_BODY_TOO_LARGE' },
      { name: 'unknown route under /api/v1', method: 'GET', path: '/api/v1/nothing', status: 404, code: 'DF_ERR_NOT_FOUND' },
      { name: 'unknown method on a route', method: 'PUT', path: '/api/v1/peers', headers: json, body: '{}', status: 404, code: 'DF_ERR_NOT_FOUND' },
      { name: 'unknown top-level route', method: 'POST', path: '/admin', status: 404, code: 'DF_ERR_NOT_FOUND' },
      { name: 'heartbeat of an unknown peer', method: 'POST', path: `/api/v1/peers/${PEER}/heartbeat`, status: 404, code: 'DF_ERR_PEER_UNKNOWN' },
      { name: 'heartbeat with a malformed peer id', method: 'POST', path: '/api/v1/peers/0OIl/heartbeat', status: 400, code: 'DF_ERR_BAD_REQUEST' },
      { name: 'pieces of an unknown task', method: 'GET', path: `/api/v1/tasks/${D}/pieces`, status: 404, code: 'DF_ERR_TASK_UNKNOWN' },
      { name: 'piece report on an unknown task', method: 'POST', path: `/api/v1/tasks/${D}/pieces`, headers: json, body: JSON.stringify({ peerId: PEER, pieces: [0] }), status: 404, code: 'DF_ERR_TASK_UNKNOWN' }
    ]

    test.each(supernodeCases)('supernode rejects: $name → $status $code', async (c) => {
      const r = await rawHttp(supernode.httpUrl, { method: c.method, path: c.path, headers: c.headers, body: c.body })
      expect(r.status, r.body.toString('utf8').slice(0, 300)).toBe(c.status)
      expect(r.headers['content-type']).toMatch(/^application\/json/)
      expect(r.json?.error, r.body.toString('utf8').slice(0, 300)).toBeTypeOf('object')
      expect(r.json.errors).toBeUndefined()
      expect(r.json.error.code).toMatch(/^DF_ERR_[A-Z_]+$/)
      expect(r.json.error.code).toBe(c.code)
      expect(typeof r.json.error.message).toBe('string')
      expect((await rawHttp(supernode.httpUrl, { path: '/livez' })).status).toBe(200)
    })

    test('both processes still answer /livez and /readyz, and the mirror still serves, after all of it', async () => {
      for (const url of [dfA.httpUrl, supernode.httpUrl]) {
        expect((await rawHttp(url, { path: '/livez' })).status).toBe(200)
        expect((await rawHttp(url, { path: '/readyz' })).status).toBe(200)
      }
      const r = await rawHttp(dfA.httpUrl, { path: `/v2/bad/input/blobs/${smallBlob.digest}` })
      expect(r.status).toBe(200)
      expect(sha256(r.body)).toBe(smallBlob.digest)
    })
  })

  test('Range through the mirror: cold ranged GETs of a P2P blob give 206 and the exact bytes; HEAD of a cached blob is local', async () => {
    const path = `/v2/range/app/blobs/${rangeBlob.digest}`
    const size = rangeBlob.size
    const mark = registry.mark()

    // Cold on B and on the whole cluster; the range straddles the piece boundaries at 4 and 8 MiB.
    const start = 4 * MiB - 1000
    const end = 8 * MiB + 1000
    const first = await rawHttp(dfB.httpUrl, { path, headers: { range: `bytes=${start}-${end}` } })
    expect(first.status).toBe(206)
    expect(first.headers['content-range']).toBe(`bytes ${start}-${end}/${size}`)
    expect(first.headers['content-length']).toBe(String(end - start + 1))
    expect(first.headers['x-damselfly-source']).toBe('p2p')
    expect(first.body.equals(await fileSlice(rangeBlob.path, start, end))).toBe(true)

    // Cold on A (pieces now held by the supernode and B): an open-ended and a suffix range.
    const tail = await rawHttp(dfA.httpUrl, { path, headers: { range: `bytes=${size - 5000}-` } })
    expect(tail.status).toBe(206)
    expect(tail.headers['content-range']).toBe(`bytes ${size - 5000}-${size - 1}/${size}`)
    expect(tail.headers['x-damselfly-source']).toBe('p2p')
    expect(tail.body.equals(await fileSlice(rangeBlob.path, size - 5000, size - 1))).toBe(true)
    const suffix = await rawHttp(dfA.httpUrl, { path, headers: { range: 'bytes=-100' } })
    expect(suffix.status).toBe(206)
    expect(suffix.headers['content-range']).toBe(`bytes ${size - 100}-${size - 1}/${size}`)
    expect(suffix.body.equals(await fileSlice(rangeBlob.path, size - 100, size - 1))).toBe(true)

    // Whole blob on A, then a HEAD: A's cache answers.
    const full = await rawHttp(dfA.httpUrl, { path })
    expect(full.status).toBe(200)
    expect(sha256(full.body)).toBe(rangeBlob.digest)
    const head = await rawHttp(dfA.httpUrl, { method: 'HEAD', path })
    expect(head.status).toBe(200)
    expect(head.headers['content-length']).toBe(String(size))
    expect(head.headers['docker-content-digest']).toBe(rangeBlob.digest)
    expect(head.headers['x-damselfly-source']).toBe('local')
    expect(head.body.length).toBe(0)
    const cachedRange = await rawHttp(dfA.httpUrl, { path, headers: { range: 'bytes=0-99' } })
    expect(cachedRange.status).toBe(206)
    expect(cachedRange.headers['content-range']).toBe(`bytes 0-99/${size}`)
    expect(cachedRange.headers['x-damselfly-source']).toBe('local')
    expect(cachedRange.body.equals(await fileSlice(rangeBlob.path, 0, 99))).toBe(true)

    const gets = await upstreamGets(mark, [rangeBlob.digest])
    expect(gets.get(rangeBlob.digest)?.count, `upstream GETs of the ranged blob:\n${upstreamLog(mark, rangeBlob.digest)}`).toBe(1)
    for (const m of await Promise.all([metrics(dfA.httpUrl), metrics(dfB.httpUrl)])) {
      expect(metricSum(m, 'damselfly_piece_verify_failures_total')).toBe(0)
    }
  })

  test('fallback is visible: a dfclient whose supernode is a dead port serves the blob from upstream and counts it', async () => {
    const before = await metrics(dfDead.httpUrl)
    const r = await rawHttp(dfDead.httpUrl, { path: `/v2/fallback/app/blobs/${fallbackBlob.digest}` })
    expect(r.status).toBe(200)
    expect(r.headers['x-damselfly-source']).toBe('upstream')
    expect(r.body.length).toBe(fallbackBlob.size)
    expect(sha256(r.body)).toBe(fallbackBlob.digest)
    const after = await metrics(dfDead.httpUrl)
    expect(metricSum(after, 'damselfly_upstream_fallbacks_total')).toBeGreaterThan(metricSum(before, 'damselfly_upstream_fallbacks_total'))
    expect(metricSum(after, 'damselfly_blob_bytes_served_total', { source: 'upstream' }) - metricSum(before, 'damselfly_blob_bytes_served_total', { source: 'upstream' })).toBe(fallbackBlob.size)
    expect(metricSum(after, 'damselfly_blob_bytes_served_total', { source: 'p2p' })).toBe(0)
  })
})
