import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, buildTestImage, dockerClassicPull, hostOf, imageBlobs, metricSum, metrics, pushImage, repoRoot,
  skopeoCopy, startContainerd, startDfclient, startRegistry, startSupernode, stopAllProcesses, verifyImageDir,
  writeHostsToml, writeRegistriesConf,
  type Containerd, type DamselflyProcess, type Registry, type TestImage
} from '../harness/index.js'

// End-to-end pull through Damselfly: registry + supernode + two dfclients, driven by skopeo (no `ns=`),
// containerd's ctr (with `ns=`) and a replay of Docker's classic puller. Small layers keep CI fast.
const SIZES = [1 * MiB, 4 * MiB, 16 * MiB]
const CREDS = { username: 'bob', password: 'pull-through-secret' }
const SOURCES = ['local', 'p2p', 'upstream']

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('pull-through tests need `npm run build` first')

describe.skipIf(!built)('pull through the Damselfly mirror', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let authRegistry: Registry
  let image: TestImage
  let classicImage: TestImage
  let privateImage: TestImage
  let supernode: DamselflyProcess
  let dfA: DamselflyProcess
  let dfB: DamselflyProcess
  let containerd: Containerd
  let hostsDir: string
  let mark: number

  const registries = (): Array<{ host: string, url: string }> => [
    { host: registry.host, url: registry.url },
    { host: authRegistry.host, url: authRegistry.url }
  ]

  beforeAll(async () => {
    image = await buildTestImage({ sizes: SIZES, seed: 'pull-through' })
    classicImage = await buildTestImage({ sizes: SIZES, seed: 'pull-through-classic' })
    privateImage = await buildTestImage({ sizes: [1 * MiB, 4 * MiB], seed: 'pull-through-private' })

    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    authRegistry = await startRegistry({ dir: await cleanup.tempDir(), auth: CREDS })
    cleanup.defer('auth registry', authRegistry.stop)
    await pushImage(registry, 'test/app', 'v1', image, 'oci')
    await pushImage(registry, 'library/classic', 'v1', classicImage, 'docker')
    await pushImage({ url: authRegistry.url, auth: CREDS }, 'private/app', 'v1', privateImage, 'oci')
    mark = registry.mark()

    supernode = await startSupernode({ dir: await cleanup.tempDir(), registries: registries() })
    cleanup.defer('supernode', supernode.stop)
    dfA = await startDfclient({ name: 'dfclient-a', dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries: registries(), defaultRegistry: registry.host })
    cleanup.defer('dfclient A', dfA.stop)
    dfB = await startDfclient({ name: 'dfclient-b', dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries: registries(), defaultRegistry: registry.host })
    cleanup.defer('dfclient B', dfB.stop)

    const ctdDir = await cleanup.tempDir('dfctd-')
    containerd = await startContainerd({ dir: ctdDir })
    cleanup.defer('containerd', containerd.stop)
    hostsDir = join(ctdDir, 'certs.d')
    await writeHostsToml(hostsDir, registry.host, { server: registry.url, mirrors: [dfB.httpUrl] })
    await writeHostsToml(hostsDir, authRegistry.host, { server: authRegistry.url, mirrors: [dfB.httpUrl] })
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('skopeo through dfclient A gets every blob, each fetched upstream once, none by skopeo itself', async () => {
    const dir = await cleanup.tempDir()
    const conf = await writeRegistriesConf(dir, { host: registry.host, mirror: hostOf(dfA.httpUrl) })
    const r = await skopeoCopy({ src: `${registry.host}/test/app:v1`, dest: `oci:${join(dir, 'out')}:v1`, registriesConf: conf, tmpDir: dir })
    expect(r.code, r.stderr).toBe(0)
    const verified = await verifyImageDir(join(dir, 'out'))
    for (const b of imageBlobs(image)) expect(verified).toContain(b.digest)

    await registry.waitForLogEntries(mark + 1)
    const gets = registry.blobGets(mark)
    for (const b of imageBlobs(image)) expect(gets.get(b.digest)?.count, `upstream GETs of ${b.digest}`).toBe(1)
    // skopeo's own User-Agent never reaches the registry for blobs: the mirror served them.
    const direct = registry.accessLog().slice(mark).filter((e) => /\/blobs\//.test(e.path) && /skopeo|containers/i.test(e.userAgent))
    expect(direct).toEqual([])
    const m = await metrics(dfA.httpUrl)
    expect(metricSum(m, 'damselfly_blob_bytes_served_total')).toBeGreaterThanOrEqual(imageBlobs(image).reduce((n, b) => n + b.size, 0))
  })

  test('ctr through dfclient B (requests carry ns=) gets every blob from P2P, not upstream again', async () => {
    const r = await containerd.pull(`${registry.host}/test/app:v1`, { hostsDir })
    expect(r.code, r.stderr + r.stdout).toBe(0)
    const content = await containerd.contentDigests()
    for (const b of imageBlobs(image)) expect(content).toContain(b.digest)
    expect(content).toContain(image.manifest.digest)

    const gets = registry.blobGets(mark)
    for (const b of imageBlobs(image)) expect(gets.get(b.digest)?.count, `upstream GETs of ${b.digest}`).toBe(1)
    const m = await metrics(dfB.httpUrl)
    expect(metricSum(m, 'damselfly_blob_bytes_served_total', { source: 'p2p' })).toBeGreaterThan(0)
    expect(metricSum(m, 'damselfly_piece_bytes_received_total')).toBeGreaterThan(0)
    expect(metricSum(m, 'damselfly_piece_verify_failures_total')).toBe(0)
  })

  test('a repeat pull on B is served from its local cache', async () => {
    const before = metricSum(await metrics(dfB.httpUrl), 'damselfly_blob_bytes_served_total', { source: 'local' })
    await containerd.reset()
    const r = await containerd.pull(`${registry.host}/test/app:v1`, { hostsDir })
    expect(r.code, r.stderr + r.stdout).toBe(0)
    const after = metricSum(await metrics(dfB.httpUrl), 'damselfly_blob_bytes_served_total', { source: 'local' })
    expect(after - before).toBeGreaterThanOrEqual(imageBlobs(image).reduce((n, b) => n + b.size, 0))
    const gets = registry.blobGets(mark)
    for (const b of imageBlobs(image)) expect(gets.get(b.digest)?.count).toBe(1)
  })

  test('basic-auth registry through the mirror: rejected without credentials, pulled with them', async () => {
    const ref = `${authRegistry.host}/private/app:v1`
    const denied = await containerd.pull(ref, { hostsDir })
    expect(denied.code).not.toBe(0)
    const ok = await containerd.pull(ref, { hostsDir, user: CREDS })
    expect(ok.code, ok.stderr + ok.stdout).toBe(0)
    const content = await containerd.contentDigests()
    for (const b of imageBlobs(privateImage)) expect(content).toContain(b.digest)

    // skopeo sends no ns=, so it needs a mirror whose default registry is the private one.
    const dir = await cleanup.tempDir()
    const dfC = await startDfclient({ name: 'dfclient-c', dir, supernode: supernode.httpUrl, registries: registries(), defaultRegistry: authRegistry.host })
    cleanup.defer('dfclient C', dfC.stop)
    const conf = await writeRegistriesConf(dir, { host: authRegistry.host, mirror: hostOf(dfC.httpUrl) })
    const r = await skopeoCopy({ src: ref, dest: `oci:${join(dir, 'out')}:v1`, registriesConf: conf, creds: CREDS, tmpDir: dir })
    expect(r.code, r.stderr).toBe(0)
    await verifyImageDir(join(dir, 'out'))
  })

  test('docker classic replay through dfclient A verifies and labels every blob', async () => {
    const r = await dockerClassicPull(dfA.httpUrl, 'library/classic', 'v1')
    expect(r.manifestDigest).toBe(classicImage.docker.manifest.digest)
    expect(r.blobs.map((b) => b.digest)).toEqual(imageBlobs(classicImage).map((b) => b.digest))
    for (const b of r.blobs) expect(SOURCES).toContain(b.headers['x-damselfly-source'])
    const gets = registry.blobGets(mark)
    for (const b of imageBlobs(classicImage)) expect(gets.get(b.digest)?.count, `upstream GETs of ${b.digest}`).toBe(1)
    // Pulled again: the same node answers from its cache.
    const again = await dockerClassicPull(dfA.httpUrl, 'library/classic', 'v1')
    for (const b of again.blobs) expect(b.headers['x-damselfly-source']).toBe('local')
  })
})
