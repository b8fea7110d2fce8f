import { existsSync } from 'node:fs'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, buildTestImage, dockerClassicPull, imageBlobs, metricSum, metrics, pushImage, repoRoot, runDfclient,
  skopeoCopy, startContainerd, startDfclient, startRegistry, startSupernode, stopAllProcesses, verifyImageDir,
  type Containerd, type DamselflyProcess, type Registry, type TestImage
} from '../harness/index.js'

// `dfclient install` output consumed by the real clients (containerd's ctr, skopeo, a replay of Docker's
// classic puller), and `dfclient doctor` on a working node and on misconfigured ones.
const built = existsSync(join(repoRoot(), 'packages/dfclient/dist/main.js'))
if (!built && process.env.CI !== undefined) throw new Error('cli-install-doctor tests need `npm run build` first')

interface DoctorJson {
  ok: boolean
  checks: Array<{ name: string, status: string, detail: string }>
  canary?: { blobs: Array<{ source: string }>, bytes: { local: number, peers: number, supernode: number, upstream: number }, fallbacks: Record<string, number> }
}

describe.skipIf(!built)('dfclient install and doctor', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let other: Registry
  let image: TestImage
  let otherImage: TestImage
  let supernode: DamselflyProcess
  let dfclient: DamselflyProcess
  let containerd: Containerd
  let dir: string
  let certsd: string
  let containerdConfig: string

  const imageBytes = (img: TestImage): number => imageBlobs(img).reduce((n, b) => n + b.size, 0)
  const served = async (df: DamselflyProcess): Promise<number> => metricSum(await metrics(df.httpUrl), 'damselfly_blob_bytes_served_total')

  beforeAll(async () => {
    image = await buildTestImage({ sizes: [1 * MiB, 3 * MiB], seed: 'install' })
    otherImage = await buildTestImage({ sizes: [2 * MiB], seed: 'install-other' })
    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    other = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('other registry', other.stop)
    await pushImage(registry, 'test/app', 'v1', image, 'oci')
    await pushImage(registry, 'library/classic', 'v1', image, 'docker')
    await pushImage(other, 'test/other', 'v1', otherImage, 'oci')
    for (const [i, seed] of ['canary-1', 'canary-2'].entries()) await pushImage(registry, `test/canary${i + 1}`, 'v1', await buildTestImage({ sizes: [1 * MiB], seed }), 'oci')
    const registries = [{ host: registry.host, url: registry.url }, { host: other.host, url: other.url }]
    supernode = await startSupernode({ dir: await cleanup.tempDir(), registries })
    cleanup.defer('supernode', supernode.stop)
    dfclient = await startDfclient({ dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries, defaultRegistry: registry.host })
    cleanup.defer('dfclient', dfclient.stop)
    dir = await cleanup.tempDir('dfinst-')
    containerd = await startContainerd({ dir })
    cleanup.defer('containerd', containerd.stop)
    certsd = join(dir, 'certs.d')
    containerdConfig = join(dir, 'cri-config.toml')
    await writeFile(containerdConfig, `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${certsd}"\n`)
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  const install = async (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> =>
    await runDfclient(['install', '--mirror', dfclient.httpUrl, ...args])

  test('containerd: ctr pulls through the installed hosts.toml, per-registry and via _default', async () => {
    const dry = await install(['--runtime', 'containerd', '--config-path', certsd, '--registry', `${registry.host}=${registry.url}`, '--containerd-config', containerdConfig, '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain(`+++ ${join(certsd, '_default', 'hosts.toml')}`)
    expect(existsSync(certsd)).toBe(false)
    const r = await install(['--runtime', 'containerd', '--config-path', certsd, '--registry', `${registry.host}=${registry.url}`, '--containerd-config', containerdConfig])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toBe('')
    expect(r.stdout).toContain(`wrote ${join(certsd, registry.host, 'hosts.toml')}`)
    const again = await install(['--runtime', 'containerd', '--config-path', certsd, '--registry', `${registry.host}=${registry.url}`, '--containerd-config', containerdConfig])
    expect(again.stdout).toContain('no changes: already configured')

    const mark = registry.mark()
    const before = await served(dfclient)
    const pull = await containerd.pull(`${registry.host}/test/app:v1`, { hostsDir: certsd })
    expect(pull.code, pull.stderr + pull.stdout).toBe(0)
    const content = await containerd.contentDigests()
    for (const b of imageBlobs(image)) expect(content).toContain(b.digest)
    expect(await served(dfclient) - before).toBe(imageBytes(image))
    // The registry saw each blob once: the supernode's back-to-source fetch, never ctr itself.
    for (const b of imageBlobs(image)) expect(registry.blobGets(mark).get(b.digest)?.count).toBe(1)

    // `other` has no hosts.toml of its own: the _default catch-all sends it through the mirror (ns=).
    const viaDefault = await served(dfclient)
    const pull2 = await containerd.pull(`${other.host}/test/other:v1`, { hostsDir: certsd })
    expect(pull2.code, pull2.stderr + pull2.stdout).toBe(0)
    expect(await served(dfclient) - viaDefault).toBe(imageBytes(otherImage))
  })

  test('podman/skopeo: the registries.conf.d drop-in sends pulls to the mirror', async () => {
    const confDir = join(dir, 'containers')
    const r = await install(['--runtime', 'podman', '--config-path', confDir, '--default-registry', registry.host, '--registry', `${registry.host}=${registry.url}`])
    expect(r.code, r.stderr).toBe(0)
    const before = await served(dfclient)
    const out = join(dir, 'skopeo-out')
    const copy = await skopeoCopy({ src: `${registry.host}/test/app:v1`, dest: `oci:${out}:v1`, registriesConf: join(confDir, 'registries.conf.d', '50-damselfly.conf'), tmpDir: dir })
    expect(copy.code, copy.stderr).toBe(0)
    await verifyImageDir(out)
    expect(await served(dfclient) - before).toBe(imageBytes(image))
  })

  test('docker: daemon.json is merged and its mirror serves a Docker-classic pull', async () => {
    const dockerDir = join(dir, 'docker')
    await runDfclient(['install', '--runtime', 'docker', '--config-path', dockerDir, '--mirror', 'https://mirror.example'])
    const r = await install(['--runtime', 'docker', '--config-path', dockerDir])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/Docker Hub images only/)
    const json = JSON.parse(await readFile(join(dockerDir, 'daemon.json'), 'utf8')) as { 'registry-mirrors': string[] }
    expect(json['registry-mirrors']).toEqual([dfclient.httpUrl, 'https://mirror.example'])
    const pulled = await dockerClassicPull(json['registry-mirrors'][0]!, 'library/classic', 'v1')
    expect(pulled.manifestDigest).toBe(image.docker.manifest.digest)
    for (const b of pulled.blobs) expect(['local', 'p2p']).toContain(b.headers['x-damselfly-source'])
  })

  test('doctor on a working node: exit 0, canary bytes from the supernode seed, none upstream', async () => {
    const r = await runDfclient(['doctor', '--mirror', dfclient.httpUrl, '--image', `${registry.host}/test/canary1:v1`, '--runtime', 'containerd', '--config-path', certsd, '--containerd-config', containerdConfig, '--json'])
    expect(r.code, r.stdout + r.stderr).toBe(0)
    const report = JSON.parse(r.stdout) as DoctorJson
    expect(report.ok).toBe(true)
    expect(report.checks.filter(c => c.status !== 'ok')).toEqual([])
    expect(report.checks.map(c => c.name)).toEqual(['daemon', 'supernode', 'announce', 'containerd', 'canary', 'sources'])
    expect(report.canary?.bytes.upstream).toBe(0)
    expect(report.canary?.bytes.supernode).toBeGreaterThan(0)
    expect(report.canary?.blobs.every(b => b.source === 'p2p')).toBe(true)

    // Again, in words: now every byte is local, which the report says.
    const text = await runDfclient(['doctor', '--mirror', dfclient.httpUrl, '--image', `${registry.host}/test/canary1:v1`, '--runtime', 'containerd', '--config-path', certsd, '--containerd-config', containerdConfig])
    expect(text.code, text.stdout).toBe(0)
    expect(text.stdout).toMatch(/\[ok\] +sources +local 1\.0 MiB.*served from this node's cache/)
    expect(text.stdout).toContain('P2P is working on this node.')
  })

  test('doctor on misconfigured nodes: runtime not pointing at the mirror, supernode unreachable, no daemon', async () => {
    const empty = await runDfclient(['doctor', '--mirror', dfclient.httpUrl, '--runtime', 'containerd', '--config-path', join(dir, 'nowhere'), '--containerd-config', containerdConfig, '--json'])
    expect(empty.code).toBe(1)
    const r1 = JSON.parse(empty.stdout) as DoctorJson
    expect(r1.checks.find(c => c.name === 'containerd')).toMatchObject({ status: 'fail', detail: expect.stringContaining('no _default/hosts.toml') })
    expect(r1.checks.find(c => c.name === 'canary')).toMatchObject({ status: 'warn' })

    // A daemon whose supernode is wrong: announce fails, so the canary goes upstream.
    const lost = await startDfclient({ name: 'dfclient-lost', dir: await cleanup.tempDir(), supernode: 'http://127.0.0.1:9', registries: [{ host: registry.host, url: registry.url }] })
    cleanup.defer('dfclient lost', lost.stop)
    const bad = await runDfclient(['doctor', '--mirror', lost.httpUrl, '--image', `${registry.host}/test/canary2:v1`, '--runtime', 'docker', '--config-path', join(dir, 'docker'), '--json'])
    expect(bad.code).toBe(1)
    const r2 = JSON.parse(bad.stdout) as DoctorJson
    expect(r2.checks.find(c => c.name === 'supernode')).toMatchObject({ status: 'fail', detail: expect.stringContaining('http://127.0.0.1:9 unreachable') })
    expect(r2.checks.find(c => c.name === 'announce')).toMatchObject({ status: 'fail' })
    expect(r2.checks.find(c => c.name === 'docker')).toMatchObject({ status: 'fail' }) // its daemon.json names the other mirror
    expect(r2.checks.find(c => c.name === 'canary')).toMatchObject({ status: 'ok' }) // the pull itself still works…
    expect(r2.checks.find(c => c.name === 'sources')).toMatchObject({ status: 'fail', detail: expect.stringContaining('P2P is not working') })
    expect(r2.canary?.bytes.upstream).toBeGreaterThan(0)
    expect(r2.canary?.fallbacks.supernode_unavailable).toBeGreaterThan(0)

    const none = await runDfclient(['doctor', '--mirror', 'http://127.0.0.1:9'])
    expect(none.code).toBe(1)
    expect(none.stdout).toMatch(/\[fail\] +daemon +nothing answers at http:\/\/127\.0\.0\.1:9/)
    expect(none.stdout).toContain('P2P is NOT working')
  })
})
