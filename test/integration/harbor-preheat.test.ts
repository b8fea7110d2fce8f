import { existsSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, basicAuthHeader, buildMultiArchImage, buildTestImage, currentCreateBody, dockerClassicPull, freePort,
  harborCall, imageBlobs, krakenNotificationBody, legacyCreateBody, pollCurrentJob, pollLegacyJob, pushImage, pushMultiArch,
  repoRoot, runCommand, startDfclient, startRegistry, startSupernode, startThrottleProxy, stopAllProcesses,
  type BlobRef, type DamselflyProcess, type HarborAuth, type MultiArchImage, type Registry, type TestImage, type ThrottleProxy
} from '../harness/index.js'

// Harbor's P2P preheat providers against real processes: a private (basic-auth) CNCF registry, a
// supernode and a dfclient. Harbor's requests are replayed byte for byte (harness/harbor.ts); the
// registry's access log proves where blob bytes came from. The registry is reached directly (its
// credentials come only in Harbor's `args.headers`) and through two throttling proxies that act as
// two more registry hosts: X, for which the supernode has credentials of its own (Kraken, the CLI,
// resuming after a restart), and Y, for which it has none.

const CREDS = { username: 'harbor', password: 'preheat-registry-secret' }
const TOKEN = 'preheat-token-for-harbor'
const OAUTH: HarborAuth = { mode: 'OAUTH', token: TOKEN }
/** What Harbor would put in `args.headers` (its own registry token; here the registry's basic login). */
const REGISTRY_HEADERS = { Authorization: basicAuthHeader(CREDS) }

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('harbor preheat tests need `npm run build` first')

describe.skipIf(!built)('Harbor P2P preheat: the supernode as Harbor\'s dragonfly and kraken provider', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let proxyX: ThrottleProxy
  let proxyY: ThrottleProxy
  let supernode: DamselflyProcess
  let supernodeDir: string
  let supernodeArgs: string[]
  let dfclient: DamselflyProcess
  const images: Record<'app' | 'legacy' | 'kraken' | 'peers' | 'slowA' | 'slowB', TestImage> = {} as never
  let multi: MultiArchImage

  const manifestUrl = (base: string, repo: string, ref: string): string => `${base}/v2/${repo}/manifests/${ref}`
  /** The image's blob GETs at the registry since `mark` (any client, any route to it). */
  const upstreamBlobBytes = (mark: number, blobs: BlobRef[]): number => {
    const gets = registry.blobGets(mark)
    return blobs.reduce((n, b) => n + (gets.get(b.digest)?.bytes ?? 0), 0)
  }
  /** Pulls through the dfclient like Docker's classic puller and returns the blob sources it reported. */
  const pullViaDfclient = async (repo: string, tag: string, platform?: { os: string, architecture: string }): Promise<string[]> => {
    const r = await dockerClassicPull(dfclient.httpUrl, repo, tag, { auth: CREDS, ...(platform === undefined ? {} : { platform }) })
    return r.blobs.map((b) => String(b.headers['x-damselfly-source']))
  }
  const createJob = async (body: string): Promise<number> => {
    const r = await harborCall(supernode.httpUrl, 'POST', '/oapi/v1/jobs', OAUTH, body)
    expect(r.status, r.body.toString()).toBe(200)
    expect(Number.isInteger(r.json.id)).toBe(true)
    expect(r.json.state).toBe('PENDING')
    return r.json.id as number
  }

  beforeAll(async () => {
    images.app = await buildTestImage({ sizes: [1 * MiB, 4 * MiB], seed: 'preheat-app' })
    images.legacy = await buildTestImage({ sizes: [1 * MiB, 2 * MiB], seed: 'preheat-legacy' })
    images.kraken = await buildTestImage({ sizes: [1 * MiB, 2 * MiB], seed: 'preheat-kraken' })
    images.peers = await buildTestImage({ sizes: [1 * MiB, 4 * MiB], seed: 'preheat-peers' })
    images.slowA = await buildTestImage({ sizes: [8 * MiB], seed: 'preheat-slow-a' })
    images.slowB = await buildTestImage({ sizes: [8 * MiB], seed: 'preheat-slow-b' })
    multi = await buildMultiArchImage({ sizes: [1 * MiB, 2 * MiB], seed: 'preheat-multi' })

    registry = await startRegistry({ dir: await cleanup.tempDir(), auth: CREDS })
    cleanup.defer('registry', registry.stop)
    const target = { url: registry.url, auth: CREDS }
    await pushImage(target, 'harbor/app', 'v1', images.app)
    await pushImage(target, 'harbor/legacy', 'v1', images.legacy, 'docker')
    await pushImage(target, 'harbor/kraken', 'v1', images.kraken)
    await pushImage(target, 'harbor/peers', 'v1', images.peers)
    await pushImage(target, 'harbor/slow-a', 'v1', images.slowA)
    await pushImage(target, 'harbor/slow-b', 'v1', images.slowB)
    await pushMultiArch(target, 'harbor/multi', 'v1', multi)

    proxyX = await startThrottleProxy(registry.host)
    cleanup.defer('proxy X', proxyX.stop)
    proxyY = await startThrottleProxy(registry.host)
    cleanup.defer('proxy Y', proxyY.stop)

    // The supernode's own credentials, for proxy X's host only, from a Docker config.json.
    supernodeDir = await cleanup.tempDir()
    const authFile = join(supernodeDir, 'registry-auth.json')
    await writeFile(authFile, JSON.stringify({ auths: { [proxyX.host]: { auth: Buffer.from(`${CREDS.username}:${CREDS.password}`).toString('base64') } } }))
    // A fixed HTTP port, so the dfclient finds the supernode again after the restart test.
    supernodeArgs = ['--listen', `127.0.0.1:${await freePort()}`, '--preheat-token', TOKEN, '--registry-auth-file', authFile]
    // The proxies are loopback registries of their own: the supernode fetches from them only through --registry entries.
    supernode = await startSupernode({ dir: supernodeDir, registries: [{ host: registry.host, url: registry.url }, { host: proxyX.host, url: proxyX.url }, { host: proxyY.host, url: proxyY.url }], extraArgs: supernodeArgs })
    cleanup.defer('supernode', async () => await supernode.stop())
    dfclient = await startDfclient({ dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries: [{ host: registry.host, url: registry.url }] })
    cleanup.defer('dfclient', dfclient.stop)
    await dfclient.process.waitForLine((l) => l.includes('following the supernode preheat feed'), 15_000)
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('every preheat API answers 401 with a stable code without the token, and health checks pass with it', async () => {
    for (const [method, path] of [['GET', '/healthy'], ['POST', '/oapi/v1/jobs'], ['GET', '/oapi/v1/jobs/1'], ['GET', '/_ping'], ['POST', '/preheats'], ['GET', '/preheats/1'], ['GET', '/health'], ['POST', '/registry/notifications']] as const) {
      for (const auth of [{ mode: 'NONE' }, { mode: 'OAUTH', token: 'wrong' }] as HarborAuth[]) {
        const r = await harborCall(supernode.httpUrl, method, path, auth, method === 'POST' ? '{}' : undefined)
        expect(r.status, `${method} ${path}`).toBe(401)
        expect(r.json.error.code).toBe('DF_ERR_PREHEAT_UNAUTHORIZED')
      }
    }
    expect((await harborCall(supernode.httpUrl, 'GET', '/healthy', OAUTH)).json).toBe('OK')
    expect((await harborCall(supernode.httpUrl, 'GET', '/_ping', OAUTH)).status).toBe(200)
    expect((await harborCall(supernode.httpUrl, 'GET', '/health', OAUTH)).status).toBe(200)
  })

  test('current driver: Harbor\'s exact request with the registry credentials only in args.headers; a pull then fetches 0 blob bytes upstream', async () => {
    const blobs = imageBlobs(images.app)
    const mark = registry.mark()
    const id = await createJob(currentCreateBody(manifestUrl(registry.url, 'harbor/app', 'v1'), REGISTRY_HEADERS))
    const done = await pollCurrentJob(supernode.httpUrl, id, OAUTH)
    expect(done.state, JSON.stringify(done.result)).toBe('SUCCESS')
    const result = done.result.job_states[0].results[0]
    expect(result.success_tasks.map((t: { url: string }) => t.url).sort()).toEqual(blobs.map((b) => `${registry.url}/v2/harbor/app/blobs/${b.digest}`).sort())
    expect(result.failure_tasks).toEqual([])
    for (const t of result.success_tasks) expect(t.hostname).not.toBe('')
    // Each blob went upstream exactly once: the seed's fetch.
    for (const b of blobs) expect(registry.blobGets(mark).get(b.digest)?.count, b.digest).toBe(1)

    const pullMark = registry.mark()
    const sources = await pullViaDfclient('harbor/app', 'v1')
    expect(sources).toEqual(blobs.map(() => 'p2p'))
    expect(upstreamBlobBytes(pullMark, blobs)).toBe(0)
  })

  test('a missing tag ends FAILURE with the registry\'s error; so does a request without registry headers', async () => {
    const missing = await pollCurrentJob(supernode.httpUrl, await createJob(currentCreateBody(manifestUrl(registry.url, 'harbor/app', 'no-such-tag'), REGISTRY_HEADERS)), OAUTH)
    expect(missing.state).toBe('FAILURE')
    expect(missing.result.job_states[0].error).toMatch(/^DF_ERR_UPSTREAM_REJECTED: registry 127\.0\.0\.1:\d+ answered 404 .*MANIFEST_UNKNOWN/)
    // The supernode holds no credentials for this host: Harbor's headers are the only way in.
    const anonymous = await pollCurrentJob(supernode.httpUrl, await createJob(currentCreateBody(manifestUrl(registry.url, 'harbor/app', 'v1'), {})), OAUTH)
    expect(anonymous.state).toBe('FAILURE')
    expect(anonymous.result.job_states[0].error).toMatch(/answered 401 .*UNAUTHORIZED/)
  })

  test('legacy driver (Harbor ≤ 2.11): ping, 201 with a string ID, WAITING/RUNNING → SUCCESS; a pull then fetches 0 blob bytes upstream', async () => {
    const blobs = imageBlobs(images.legacy)
    const body = legacyCreateBody({ url: manifestUrl(registry.url, 'harbor/legacy', 'v1'), headers: REGISTRY_HEADERS, image: 'harbor/legacy', tag: 'v1', digest: images.legacy.docker.manifest.digest })
    const created = await harborCall(supernode.httpUrl, 'POST', '/preheats', OAUTH, body)
    expect(created.status).toBe(201)
    expect(typeof created.json.ID).toBe('string')
    const done = await pollLegacyJob(supernode.httpUrl, created.json.ID, OAUTH)
    expect(done).toMatchObject({ ID: created.json.ID, status: 'SUCCESS', errorMsg: '' })
    const pullMark = registry.mark()
    expect(await pullViaDfclient('harbor/legacy', 'v1')).toEqual(blobs.map(() => 'p2p'))
    expect(upstreamBlobBytes(pullMark, blobs)).toBe(0)
  })

  test('kraken driver: a push notification (no registry token) is preheated with the supernode\'s own credentials', async () => {
    const blobs = imageBlobs(images.kraken)
    const body = krakenNotificationBody({ url: manifestUrl(proxyX.url, 'harbor/kraken', 'v1'), repository: 'harbor/kraken', tag: 'v1', digest: images.kraken.manifest.digest })
    const r = await harborCall(supernode.httpUrl, 'POST', '/registry/notifications', OAUTH, body)
    expect(r.status).toBe(200)
    // Harbor counts any 2xx as SUCCESS and never polls; the job it started is still observable.
    const done = await pollCurrentJob(supernode.httpUrl, r.json.jobs[0], OAUTH)
    expect(done.state, JSON.stringify(done.result)).toBe('SUCCESS')
    const pullMark = registry.mark()
    expect(await pullViaDfclient('harbor/kraken', 'v1')).toEqual(blobs.map(() => 'p2p'))
    expect(upstreamBlobBytes(pullMark, blobs)).toBe(0)
  })

  test('multi-arch index: linux/amd64 by default; `supernode preheat --platform all` fetches the rest', async () => {
    const [amd64, arm64] = multi.images as [TestImage, TestImage]
    const amdBlobs = imageBlobs(amd64)
    const armOnly = imageBlobs(arm64).filter((b) => !amdBlobs.some((a) => a.digest === b.digest))
    const mark = registry.mark()
    const done = await pollCurrentJob(supernode.httpUrl, await createJob(currentCreateBody(manifestUrl(registry.url, 'harbor/multi', 'v1'), REGISTRY_HEADERS)), OAUTH)
    expect(done.state).toBe('SUCCESS')
    expect(done.result.job_states[0].results[0].success_tasks).toHaveLength(amdBlobs.length)
    for (const b of amdBlobs) expect(registry.blobGets(mark).get(b.digest)?.count).toBe(1)
    for (const b of armOnly) expect(registry.blobGets(mark).get(b.digest)).toBeUndefined()

    // The operator CLI, through host X (the supernode's own credentials; the CLI sends none).
    const cli = await runCommand(process.execPath, [
      join(repoRoot(), 'packages/supernode/dist/main.js'), 'preheat', `${proxyX.host}/harbor/multi:v1`, '--platform', 'all',
      '--supernode', supernode.httpUrl, '--preheat-token', TOKEN, '--registry', `${proxyX.host}=${proxyX.url}`
    ], { timeoutMs: 60_000 })
    expect(cli.code, cli.stdout + cli.stderr).toBe(0)
    // Not a terminal: plain progress lines, no bar.
    expect(cli.stdout).toMatch(/^preheat job \d+: http:\/\/127\.0\.0\.1:\d+\/v2\/harbor\/multi\/manifests\/v1 \(single_seed_peer\)$/m)
    expect(cli.stdout).toMatch(/^preheated 127\.0\.0\.1:\d+\/harbor\/multi:v1: 5\/5 blobs/m)
    expect(cli.stdout).not.toContain('\r')
    for (const b of armOnly) expect(registry.blobGets(mark).get(b.digest)?.count).toBe(1)

    const pullMark = registry.mark()
    await pullViaDfclient('harbor/multi', 'v1', { os: 'linux', architecture: 'arm64' })
    expect(upstreamBlobBytes(pullMark, imageBlobs(arm64))).toBe(0)
  })

  test('all_peers: the following dfclient fetches the image too and is listed per blob with its hostname and ip', async () => {
    const blobs = imageBlobs(images.peers)
    const mark = registry.mark()
    const done = await pollCurrentJob(supernode.httpUrl, await createJob(currentCreateBody(manifestUrl(registry.url, 'harbor/peers', 'v1'), REGISTRY_HEADERS, 'all_peers')), OAUTH)
    expect(done.state, JSON.stringify(done.result)).toBe('SUCCESS')
    const rows = done.result.job_states[0].results[0].success_tasks as Array<{ url: string, hostname: string, ip: string, peer_id?: string }>
    const peerRows = rows.filter((t) => t.peer_id === dfclient.peerId)
    expect(peerRows.map((t) => t.url).sort()).toEqual(blobs.map((b) => `${registry.url}/v2/harbor/peers/blobs/${b.digest}`).sort())
    expect(peerRows.every((t) => t.ip === '127.0.0.1' && t.hostname !== '')).toBe(true)
    // The dfclient already holds every blob: the pull is served from its own cache.
    expect(await pullViaDfclient('harbor/peers', 'v1')).toEqual(blobs.map(() => 'local'))
    for (const b of blobs) expect(registry.blobGets(mark).get(b.digest)?.count).toBe(1)
  })

  test('a supernode killed mid-job: the job with credentials to resume resumes to SUCCESS, the other ends FAILURE with the reason', async () => {
    proxyX.setRate(2 * MiB)
    proxyY.setRate(2 * MiB)
    const [x0, y0] = [proxyX.bytesDown(), proxyY.bytesDown()]
    const resumable = await createJob(currentCreateBody(manifestUrl(proxyX.url, 'harbor/slow-a', 'v1'), REGISTRY_HEADERS))
    const lost = await createJob(currentCreateBody(manifestUrl(proxyY.url, 'harbor/slow-b', 'v1'), REGISTRY_HEADERS))
    // Mid-job: both layers are flowing (each is 8 MiB at 2 MiB/s).
    for (let i = 0; i < 200 && (proxyX.bytesDown() - x0 < MiB || proxyY.bytesDown() - y0 < MiB); i++) await new Promise((resolve) => setTimeout(resolve, 25))
    expect(proxyX.bytesDown() - x0).toBeGreaterThanOrEqual(MiB)
    for (const id of [resumable, lost]) expect((await harborCall(supernode.httpUrl, 'GET', `/oapi/v1/jobs/${id}`, OAUTH)).json.state).toBe('PENDING')
    process.kill(supernode.process.pid, 'SIGKILL')
    await supernode.process.exited

    proxyX.setRate(undefined)
    proxyY.setRate(undefined)
    // The proxies are loopback registries of their own: the supernode fetches from them only through --registry entries.
    supernode = await startSupernode({ dir: supernodeDir, registries: [{ host: registry.host, url: registry.url }, { host: proxyX.host, url: proxyX.url }, { host: proxyY.host, url: proxyY.url }], extraArgs: supernodeArgs })
    const failed = await pollCurrentJob(supernode.httpUrl, lost, OAUTH)
    expect(failed.state).toBe('FAILURE')
    expect(failed.result.job_states[0].error).toMatch(/^DF_ERR_PREHEAT_INTERRUPTED: .*no registryAuth is configured for 127\.0\.0\.1:\d+/)
    const resumed = await pollCurrentJob(supernode.httpUrl, resumable, OAUTH)
    expect(resumed.state, JSON.stringify(resumed.result)).toBe('SUCCESS')

    const pullMark = registry.mark()
    await pullViaDfclient('harbor/slow-a', 'v1')
    expect(upstreamBlobBytes(pullMark, imageBlobs(images.slowA))).toBe(0)
  })
})
