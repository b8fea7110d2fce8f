import { existsSync } from 'node:fs'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { request } from 'undici'
import {
  Cleanup, MiB, buildTestImage, imageBlobs, metricSum, metricValue, metrics, pushImage, repoRoot, runDfclient,
  startContainerd, startDfclient, startRegistry, startSupernode, stopAllProcesses,
  type Containerd, type DamselflyProcess, type Registry, type TestImage
} from '../harness/index.js'

// The piece-cache quota with real processes: a dfclient with --cache-size 20MiB pulls three ~8 MiB images
// with containerd; the cache stays under the quota on disk, evicts least recently used blobs, counts the
// evictions, every pull stays correct, and the supernode stops offering the evicted blobs from this peer.
const built = existsSync(join(repoRoot(), 'packages/dfclient/dist/main.js'))
if (!built && process.env.CI !== undefined) throw new Error('cache-quota tests need `npm run build` first')

const QUOTA = 20 * MiB

/** What `du` says: allocated blocks of every file under `dir`. */
async function diskBytes (dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    total += entry.isDirectory() ? await diskBytes(path) : (await stat(path)).blocks * 512
  }
  return total
}

/** Peer ids the supernode offers as sources of any piece of `digest`. */
async function holders (supernodeUrl: string, digest: string): Promise<string[]> {
  const res = await request(`${supernodeUrl}/api/v1/tasks/${encodeURIComponent(digest)}/pieces`)
  const body = await res.body.json() as { pieces: Array<{ sources: Array<{ peerId: string, seed: boolean }> }> }
  return [...new Set(body.pieces.flatMap(p => p.sources.filter(s => !s.seed).map(s => s.peerId)))]
}

describe.skipIf(!built)('piece-cache quota', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let images: TestImage[]
  let supernode: DamselflyProcess
  let dfclient: DamselflyProcess
  let containerd: Containerd
  let hostsDir: string

  beforeAll(async () => {
    images = []
    for (const seed of ['quota-a', 'quota-b', 'quota-c']) images.push(await buildTestImage({ sizes: [1 * MiB, 7 * MiB], seed }))
    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    for (const [i, img] of images.entries()) await pushImage(registry, `test/quota${i}`, 'v1', img, 'oci')
    const registries = [{ host: registry.host, url: registry.url }]
    supernode = await startSupernode({ dir: await cleanup.tempDir(), registries })
    cleanup.defer('supernode', supernode.stop)
    dfclient = await startDfclient({ dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries, extraArgs: ['--cache-size', '20MiB', '--cache-ttl', '1h'] })
    cleanup.defer('dfclient', dfclient.stop)
    const dir = await cleanup.tempDir('dfquota-')
    containerd = await startContainerd({ dir })
    cleanup.defer('containerd', containerd.stop)
    hostsDir = join(dir, 'certs.d')
    const r = await runDfclient(['install', '--runtime', 'containerd', '--config-path', hostsDir, '--mirror', dfclient.httpUrl, '--registry', `${registry.host}=${registry.url}`, '--containerd-config', join(dir, 'none.toml')])
    expect(r.code, r.stderr).toBe(0)
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('pulling more than the quota: correct pulls, cache ≤ quota on disk, evictions counted', async () => {
    const total = images.flatMap(img => imageBlobs(img)).reduce((n, b) => n + b.size, 0)
    expect(total).toBeGreaterThan(QUOTA)
    for (const [i, img] of images.entries()) {
      const pull = await containerd.pull(`${registry.host}/test/quota${i}:v1`, { hostsDir })
      expect(pull.code, pull.stderr + pull.stdout).toBe(0)
      const content = await containerd.contentDigests()
      for (const b of imageBlobs(img)) expect(content).toContain(b.digest)
    }
    const m = await metrics(dfclient.httpUrl)
    const onDisk = await diskBytes(join(dfclient.dataDir, 'blobs'))
    const accounted = metricValue(m, 'damselfly_cache_bytes')
    const evictions = metricSum(m, 'damselfly_cache_evictions_total')
    process.stdout.write(`cache-quota: pulled ${total} bytes through a ${QUOTA}-byte quota; on disk ${onDisk} bytes, accounted ${accounted}, evictions ${evictions} (quota ${metricValue(m, 'damselfly_cache_evictions_total', { reason: 'quota' })})\n`)
    expect(onDisk).toBeLessThanOrEqual(QUOTA)
    expect(accounted).toBeLessThanOrEqual(QUOTA)
    expect(onDisk).toBeLessThanOrEqual(accounted)
    expect(metricValue(m, 'damselfly_cache_quota_bytes')).toBe(QUOTA)
    expect(metricValue(m, 'damselfly_cache_evictions_total', { reason: 'quota' })).toBeGreaterThan(0)
    expect(metricSum(m, 'damselfly_upstream_fallbacks_total')).toBe(0)
    expect(metricSum(m, 'damselfly_piece_verify_failures_total')).toBe(0)
  })

  test('the supernode stops offering evicted blobs from this peer, and they pull again correctly', async () => {
    // The first image's big layer was the least recently used when the third image arrived.
    const evicted = images[0]!.layers[1]!.digest
    const kept = images[2]!.layers[1]!.digest
    // The dfclient resyncs by leaving (its holdings clear at once), announcing again and re-reporting what
    // it still holds: wait for the whole resync, not just its first step.
    const resynced = async (): Promise<boolean> =>
      !(await holders(supernode.httpUrl, evicted)).includes(dfclient.peerId) && (await holders(supernode.httpUrl, kept)).includes(dfclient.peerId)
    const deadline = Date.now() + 30_000
    while (!(await resynced()) && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 250))
    expect(await holders(supernode.httpUrl, evicted)).not.toContain(dfclient.peerId)
    expect(await holders(supernode.httpUrl, kept)).toContain(dfclient.peerId)

    await containerd.reset()
    const again = await containerd.pull(`${registry.host}/test/quota0:v1`, { hostsDir })
    expect(again.code, again.stderr + again.stdout).toBe(0)
    const m = await metrics(dfclient.httpUrl)
    expect(await diskBytes(join(dfclient.dataDir, 'blobs'))).toBeLessThanOrEqual(QUOTA)
    expect(metricSum(m, 'damselfly_upstream_fallbacks_total')).toBe(0)
  })
})
