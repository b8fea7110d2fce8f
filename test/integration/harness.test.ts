import { createReadStream } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, buildMultiArchImage, buildTestImage, dockerClassicPull, imageBlobs, parseMetrics, metricValue,
  pushImage, pushMultiArch, sha256, skopeoCopy, startContainerd, startRegistry, stopAllProcesses, verifyImageDir,
  writeHostsToml, writeRegistriesConf, type Containerd, type MultiArchImage, type Registry, type TestImage
} from '../harness/index.js'

// Proves the harness itself against the real registry and clients, without Damselfly's binaries.
const SIZES = [1 * MiB, 2 * MiB]
const CREDS = { username: 'alice', password: 's3cret-pass' }

describe('test harness against a real registry', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let image: TestImage
  let multi: MultiArchImage
  let containerd: Containerd | undefined

  beforeAll(async () => {
    image = await buildTestImage({ sizes: SIZES, seed: 'harness' })
    multi = await buildMultiArchImage({ sizes: SIZES, seed: 'harness' })
    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    await pushImage(registry, 'test/img', 'oci', image, 'oci')
    await pushImage(registry, 'test/img', 'v2s2', image, 'docker')
    await pushMultiArch(registry, 'test/img', 'multi', multi)
    await pushImage(registry, 'library/classic', 'latest', image, 'docker')
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('layers are bit-for-bit deterministic and diff_ids match the uncompressed tar', async () => {
    const fresh = await buildTestImage({ sizes: SIZES, seed: 'harness', cacheDir: await cleanup.tempDir() })
    expect(fresh.layers.map((l) => l.digest)).toEqual(image.layers.map((l) => l.digest))
    expect(fresh.manifest.digest).toBe(image.manifest.digest)
    for (const layer of fresh.layers) {
      const h = createHash('sha256')
      await pipeline(createReadStream(layer.path), createGunzip(), h)
      expect('sha256:' + h.digest('hex')).toBe(layer.diffId)
    }
    // The multi-arch images share their first layer and differ in config.
    expect(multi.images[1]!.layers[0]!.digest).toBe(multi.images[0]!.layers[0]!.digest)
    expect(multi.images[1]!.config.digest).not.toBe(multi.images[0]!.config.digest)
  })

  test('pushing again skips existing blobs', async () => {
    const again = await pushImage(registry, 'test/img', 'oci', image, 'oci')
    expect(again.filter((d) => d.uploaded).map((d) => d.mediaType)).toEqual([image.manifest.mediaType])
  })

  test('access log counts blob GETs (200 and 206) but not HEADs', async () => {
    const layer = image.layers[1]!
    const url = `${registry.url}/v2/test/img/blobs/${layer.digest}`
    const mark = registry.mark()
    for (const headers of [{}, {}, { range: 'bytes=100-' }]) {
      const res = await request(url, { headers })
      // Read the whole body: undici's body.dump() stops after 128 KiB and aborts, and the registry then
      // logs only the bytes it managed to write.
      const body = Buffer.from(await res.body.arrayBuffer())
      expect(res.statusCode).toBe('range' in headers ? 206 : 200)
      expect(body.length).toBe(layer.size - ('range' in headers ? 100 : 0))
    }
    const head = await request(url, { method: 'HEAD' })
    await head.body.dump()
    await registry.waitForLogEntries(mark + 4)
    const gets = registry.blobGets(mark)
    expect(gets.get(layer.digest)).toEqual({ count: 3, bytes: 3 * layer.size - 100 })
    expect(registry.egressBytes(mark)).toBe(3 * layer.size - 100)
  })

  // An oci: destination would make skopeo convert a v2s2 manifest (and re-serialise its config), so the
  // v2s2 image goes to dir:, which keeps the manifest bytes as they came from the registry.
  test.each([
    { tag: 'oci', dest: 'oci' },
    { tag: 'v2s2', dest: 'dir' }
  ])('skopeo copies the $tag manifest from the registry into $dest: and every digest verifies', async ({ tag, dest }) => {
    const dir = await cleanup.tempDir()
    const conf = await writeRegistriesConf(dir, { host: registry.host })
    const target = dest === 'oci' ? `oci:${join(dir, 'out')}:${tag}` : `dir:${join(dir, 'out')}`
    const r = await skopeoCopy({ src: `${registry.host}/test/img:${tag}`, dest: target, registriesConf: conf, tmpDir: dir })
    expect(r.code, r.stderr).toBe(0)
    const verified = await verifyImageDir(join(dir, 'out'))
    for (const b of imageBlobs(image)) expect(verified).toContain(b.digest)
    if (dest === 'dir') {
      expect(sha256(await readFile(join(dir, 'out', 'manifest.json')))).toBe(image.docker.manifest.digest)
    } else {
      expect(verified).toContain(image.manifest.digest)
    }
  })

  test('skopeo --all copies the multi-arch index into a dir: and an OCI layout', async () => {
    const dir = await cleanup.tempDir()
    const conf = await writeRegistriesConf(dir, { host: registry.host })
    const all = await skopeoCopy({ src: `${registry.host}/test/img:multi`, dest: `oci:${join(dir, 'layout')}:multi`, registriesConf: conf, all: true, tmpDir: dir })
    expect(all.code, all.stderr).toBe(0)
    const verified = await verifyImageDir(join(dir, 'layout'))
    for (const b of imageBlobs(...multi.images)) expect(verified).toContain(b.digest)
    expect(verified).toContain(multi.index.digest)

    const one = await skopeoCopy({ src: `${registry.host}/test/img:oci`, dest: `dir:${join(dir, 'plain')}`, registriesConf: conf, tmpDir: dir })
    expect(one.code, one.stderr).toBe(0)
    expect((await verifyImageDir(join(dir, 'plain'))).length).toBe(1 + SIZES.length)
  })

  test('ctr pulls OCI, v2s2 and the index directly with a server-only hosts.toml', async () => {
    const dir = await cleanup.tempDir('dfctd-')
    containerd = await startContainerd({ dir })
    cleanup.defer('containerd', containerd.stop)
    const hostsDir = await writeHostsToml(join(dir, 'certs.d'), registry.host, { server: registry.url })
    for (const tag of ['oci', 'v2s2', 'multi']) {
      const r = await containerd.pull(`${registry.host}/test/img:${tag}`, { hostsDir })
      expect(r.code, r.stderr + r.stdout).toBe(0)
    }
    const content = await containerd.contentDigests()
    for (const d of [...imageBlobs(image).map((b) => b.digest), image.manifest.digest, image.docker.manifest.digest, multi.index.digest]) {
      expect(content).toContain(d)
    }
    expect(await containerd.images()).toHaveLength(3)
    await containerd.reset()
    expect(await containerd.contentDigests()).toEqual([])
  })

  test('mirror configs route skopeo and ctr to a mirror (a second registry standing in for dfclient)', async () => {
    const dir = await cleanup.tempDir('dfctd-')
    const mirror = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('mirror registry', mirror.stop)
    await pushImage(mirror, 'test/img', 'oci', image, 'oci')
    const upstreamMark = registry.mark()
    const mirrorMark = mirror.mark()

    const conf = await writeRegistriesConf(dir, { host: registry.host, mirror: mirror.host })
    const r = await skopeoCopy({ src: `${registry.host}/test/img:oci`, dest: `oci:${join(dir, 'out')}:oci`, registriesConf: conf, tmpDir: dir })
    expect(r.code, r.stderr).toBe(0)
    await verifyImageDir(join(dir, 'out'))

    const ctd = containerd ?? await startContainerd({ dir })
    if (containerd === undefined) cleanup.defer('containerd', ctd.stop)
    await ctd.reset()
    const hostsDir = await writeHostsToml(join(dir, 'certs.d'), registry.host, { server: registry.url, mirrors: [mirror.url] })
    const p = await ctd.pull(`${registry.host}/test/img:oci`, { hostsDir })
    expect(p.code, p.stderr).toBe(0)

    await mirror.waitForLogEntries(mirrorMark + 1)
    const log = mirror.accessLog().slice(mirrorMark)
    const blobUAs = log.filter((e) => e.path.includes('/blobs/') && e.method === 'GET').map((e) => e.userAgent.split('/')[0])
    expect(new Set(blobUAs)).toEqual(new Set(['skopeo', 'containerd']))
    // containerd marks requests to a mirror with ns=<registry host>; skopeo sends no ns.
    expect(log.filter((e) => e.userAgent.startsWith('containerd')).every((e) => e.target.includes(`ns=${encodeURIComponent(registry.host)}`))).toBe(true)
    expect(log.filter((e) => e.userAgent.startsWith('skopeo')).some((e) => e.target.includes('ns='))).toBe(false)
    for (const b of imageBlobs(image)) expect(mirror.blobGets(mirrorMark).get(b.digest)?.count).toBe(2)
    expect(registry.blobGets(upstreamMark).size).toBe(0)
  })

  test('basic-auth registry: anonymous is rejected, credentials work for push, skopeo, ctr and the classic replay', async () => {
    const dir = await cleanup.tempDir()
    const authReg = await startRegistry({ dir, auth: CREDS, realm: 'damselfly-private' })
    cleanup.defer('auth registry', authReg.stop)
    const anon = await request(`${authReg.url}/v2/`)
    await anon.body.dump()
    expect(anon.statusCode).toBe(401)
    expect(anon.headers['www-authenticate']).toBe('Basic realm="damselfly-private"')
    await expect(pushImage({ url: authReg.url }, 'private/img', 'v1', image)).rejects.toThrow(/401/)
    await pushImage({ url: authReg.url, auth: CREDS }, 'private/img', 'v1', image)

    const conf = await writeRegistriesConf(dir, { host: authReg.host })
    const src = `${authReg.host}/private/img:v1`
    const denied = await skopeoCopy({ src, dest: `oci:${join(dir, 'a')}:v1`, registriesConf: conf, tmpDir: dir })
    expect(denied.code).not.toBe(0)
    const ok = await skopeoCopy({ src, dest: `oci:${join(dir, 'b')}:v1`, registriesConf: conf, creds: CREDS, tmpDir: dir })
    expect(ok.code, ok.stderr).toBe(0)
    await verifyImageDir(join(dir, 'b'))

    if (containerd !== undefined) {
      const hostsDir = await writeHostsToml(join(dir, 'certs.d'), authReg.host, { server: authReg.url })
      const noCreds = await containerd.pull(src, { hostsDir })
      expect(noCreds.code).not.toBe(0)
      const withCreds = await containerd.pull(src, { hostsDir, user: CREDS })
      expect(withCreds.code, withCreds.stderr).toBe(0)
    }

    const classic = await dockerClassicPull(authReg.url, 'private/img', 'v1', { auth: CREDS })
    expect(classic.responses[0]!.status).toBe(401)
    expect(classic.blobs).toHaveLength(1 + SIZES.length)
  })

  test('docker classic replay resolves the tag and verifies every blob against the registry', async () => {
    const mark = registry.mark()
    const r = await dockerClassicPull(registry.url, 'library/classic', 'latest')
    expect(r.manifestDigest).toBe(image.docker.manifest.digest)
    expect(r.responses.map((x) => `${x.method} ${x.status}`)).toEqual(['GET 200', 'HEAD 200', 'GET 200', 'GET 200', 'GET 200', 'GET 200'])
    expect(r.blobs.map((b) => b.digest)).toEqual(imageBlobs(image).map((b) => b.digest))
    await registry.waitForLogEntries(mark + r.responses.length)
    const gets = registry.blobGets(mark)
    for (const b of imageBlobs(image)) expect(gets.get(b.digest)).toEqual({ count: 1, bytes: b.size })
    // The index resolves too (platform manifest picked by the replay).
    const m = await dockerClassicPull(registry.url, 'test/img', 'multi')
    expect(m.manifestDigest).toBe(multi.index.digest)
  })

  test('metrics parser reads Prometheus text', () => {
    const m = parseMetrics([
      '# HELP damselfly_blob_bytes_served_total bytes',
      '# TYPE damselfly_blob_bytes_served_total counter',
      'damselfly_blob_bytes_served_total{source="local"} 42',
      'damselfly_blob_bytes_served_total{source="p2p",x="a\\"b"} 7',
      'damselfly_peers 3'
    ].join('\n'))
    expect(metricValue(m, 'damselfly_blob_bytes_served_total', { source: 'local' })).toBe(42)
    expect(metricValue(m, 'damselfly_blob_bytes_served_total', { x: 'a"b', source: 'p2p' })).toBe(7)
    expect(metricValue(m, 'damselfly_peers')).toBe(3)
    expect(metricValue(m, 'damselfly_missing')).toBe(0)
  })
})
