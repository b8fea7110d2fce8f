import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, buildMultiArchImage, buildTestImage, imageBlobs, pushImage, pushMultiArch, repoRoot, runCommand, runDfclient,
  startDfclient, startRegistry, startSupernode, stopAllProcesses, verifyImageDir,
  type DamselflyProcess, type MultiArchImage, type Registry, type TestImage
} from '../harness/index.js'

// `dfclient get` as a standalone P2P peer: a blob URL and whole images, every digest checked, with a
// real registry, supernode and a dfclient daemon that already holds the image (so pieces come from a
// peer), and the failures an operator meets (no supernode, unknown blob, bad source).
const built = existsSync(join(repoRoot(), 'packages/dfclient/dist/main.js'))
if (!built && process.env.CI !== undefined) throw new Error('cli-get tests need `npm run build` first')

const sha256 = async (path: string): Promise<string> => `sha256:${createHash('sha256').update(await readFile(path)).digest('hex')}`

describe.skipIf(!built)('dfclient get', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let image: TestImage
  let multi: MultiArchImage
  let supernode: DamselflyProcess
  let daemon: DamselflyProcess
  let common: string[]

  beforeAll(async () => {
    image = await buildTestImage({ sizes: [1 * MiB, 9 * MiB], seed: 'cli-get' })
    multi = await buildMultiArchImage({ sizes: [2 * MiB], seed: 'cli-get-multi' })
    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    await pushImage(registry, 'test/app', 'v1', image, 'oci')
    await pushMultiArch(registry, 'test/multi', 'v1', multi)
    const registries = [{ host: registry.host, url: registry.url }]
    supernode = await startSupernode({ dir: await cleanup.tempDir(), registries })
    cleanup.defer('supernode', supernode.stop)
    daemon = await startDfclient({ dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries })
    cleanup.defer('dfclient', daemon.stop)
    common = ['--supernode', supernode.httpUrl, '--registry', `${registry.host}=${registry.url}`, '--p2p-listen', '/ip4/127.0.0.1/tcp/0']
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('a blob URL: the file has the digest, and the bytes came through P2P, upstream fetched once', async () => {
    const layer = image.layers[1]!
    const out = join(await cleanup.tempDir(), 'layer.tgz')
    const mark = registry.mark()
    const r = await runDfclient(['get', `${registry.url}/v2/test/app/blobs/${layer.digest}`, '-O', out, ...common])
    expect(r.code, r.stderr).toBe(0)
    expect(await sha256(out)).toBe(layer.digest)
    expect(r.stdout).toContain(`${layer.digest} ${layer.size} bytes verified`)
    expect(r.stdout).toMatch(/every digest verified; from peers [\d.]+ \w+, from the supernode seed 9\.0 MiB/)
    expect((await readdir(join(out, '..'))).filter(n => n.startsWith('.dfclient-get-'))).toEqual([])
    await registry.waitForLogEntries(mark + 1)
    expect(registry.blobGets(mark).get(layer.digest)?.count).toBe(1)
  })

  test('an image reference: an OCI layout whose every blob verifies, peers serving what the daemon holds', async () => {
    // The daemon pulls the image first (as a node would), so the get's pieces can come from it.
    for (const b of imageBlobs(image)) {
      const res = await fetch(`${daemon.httpUrl}/v2/test/app/blobs/${b.digest}`)
      expect(res.status).toBe(200)
      await res.arrayBuffer()
    }
    const out = join(await cleanup.tempDir(), 'image')
    const r = await runDfclient(['get', `${registry.host}/test/app:v1`, '-O', out, ...common])
    expect(r.code, r.stderr).toBe(0)
    const verified = await verifyImageDir(out)
    for (const b of [...imageBlobs(image), image.manifest]) expect(verified).toContain(b.digest)
    const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string, annotations?: Record<string, string> }> }
    expect(index.manifests).toEqual([expect.objectContaining({ digest: image.manifest.digest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } })])
    expect(r.stdout).toMatch(/3 blob\(s\), 10\.0 MiB, every digest verified; from peers 10\.0 MiB/)
    // A real client reads the layout.
    const copied = join(await cleanup.tempDir(), 'copied')
    const copy = await runCommand('skopeo', ['--insecure-policy', 'copy', `oci:${out}:v1`, `dir:${copied}`], { timeoutMs: 60_000 })
    expect(copy.code, copy.stderr).toBe(0)
    await verifyImageDir(copied)
  })

  test('a multi-platform image: the platform asked for', async () => {
    const out = join(await cleanup.tempDir(), 'arm')
    const r = await runDfclient(['get', `${registry.host}/test/multi:v1`, '-O', out, '--platform', 'linux/arm64', ...common])
    expect(r.code, r.stderr).toBe(0)
    const arm = multi.images[1]!
    const verified = await verifyImageDir(out)
    expect(verified.sort()).toEqual([arm.manifest.digest, ...imageBlobs(arm).map(b => b.digest)].sort())
    const none = await runDfclient(['get', `${registry.host}/test/multi:v1`, '-O', join(out, 'x'), '--platform', 'linux/s390x', ...common])
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/no manifest for linux\/s390x \(offers: linux\/amd64, linux\/arm64\).*DF_ERR_MANIFEST_INVALID/)
  })

  test('failures are clear and non-zero', async () => {
    const dir = await cleanup.tempDir()
    const missing = `sha256:${'0'.repeat(64)}`
    const unknown = await runDfclient(['get', `${registry.url}/v2/test/app/blobs/${missing}`, '-O', join(dir, 'x'), ...common])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/answered 404/)
    expect(existsSync(join(dir, 'x'))).toBe(false)

    const noSupernode = await runDfclient(['get', `${registry.url}/v2/test/app/blobs/${image.config.digest}`, '-O', join(dir, 'y'), '--supernode', 'http://127.0.0.1:9', '--p2p-listen', '/ip4/127.0.0.1/tcp/0'])
    expect(noSupernode.code).toBe(1)
    expect(noSupernode.stderr).toMatch(/no supernode acknowledged this peer.*DF_ERR_SUPERNODE_UNAVAILABLE/)

    const bad = await runDfclient(['get', 'ftp://x/y', '-O', join(dir, 'z'), ...common])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/DF_ERR_SOURCE_INVALID/)

    const usage = await runDfclient(['get', 'nginx', '-O', join(dir, 'z')], { env: { DAMSELFLY_SUPERNODE: '' } })
    expect(usage.code).toBe(2)
    expect(usage.stderr).toMatch(/supernode/)
    expect(await readdir(dir)).toEqual([])
  })
})
