import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { layoutFor } from '@damselfly/proto'
import { Cleanup, MiB, metricSum, metrics, repoRoot, startDfclient, startRegistry, startSupernode, stopAllProcesses, type DamselflyProcess, type Registry } from '../harness/index.js'
import { auditCache, cacheFile, pushedBlob, streamGet, type PushedBlob } from '../harness/faults.js'

// A blob past 64 pieces of 4 MiB is cut into larger pieces (proto piece-layout: 8 MiB here), which
// a download fetches two at a time (its 16 MiB budget). End to end with real processes: the seed cuts
// it so, both dfclients accept that layout (they refuse one they would not cut themselves), the second
// gets pieces from the first, and both caches record the piece size (an upgrade drops blobs cut by
// another rule, so the size must be on disk). Bytes and digests only; no timing.

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('large-pieces test needs `npm run build` first')

const REPO = 'big/layer'

describe.skipIf(!built)('a blob of 8 MiB pieces through a supernode and two dfclients', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let supernode: DamselflyProcess
  let dfA: DamselflyProcess
  let dfB: DamselflyProcess
  let blob: PushedBlob

  beforeAll(async () => {
    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    blob = await pushedBlob(registry, REPO, 'large-pieces', 256 * MiB + 3 * MiB)
    const registries = [{ host: registry.host, url: registry.url }]
    supernode = await startSupernode({ dir: await cleanup.tempDir(), registries })
    cleanup.defer('supernode', supernode.stop)
    dfA = await startDfclient({ name: 'dfclient-a', dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries, defaultRegistry: registry.host })
    cleanup.defer('dfclient a', dfA.stop)
    dfB = await startDfclient({ name: 'dfclient-b', dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries, defaultRegistry: registry.host })
    cleanup.defer('dfclient b', dfB.stop)
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('both pulls verify, B takes pieces from A, nothing falls back, and both caches record 8 MiB pieces', async () => {
    const layout = layoutFor(blob.size)
    expect(layout.pieceSize).toBe(8 * MiB)
    const mark = registry.mark()
    const url = (df: DamselflyProcess): string => `${df.httpUrl}/v2/${REPO}/blobs/${blob.digest}?ns=${encodeURIComponent(registry.host)}`

    const a = await streamGet(url(dfA))
    const before = await metrics(dfB.httpUrl)
    const b = await streamGet(url(dfB))
    const after = await metrics(dfB.httpUrl)

    for (const [name, got] of [['A', a], ['B', b]] as const) {
      expect(got.status, `${name} status`).toBe(200)
      expect(got.bytes, `${name} body length`).toBe(blob.size)
      expect(got.digest, `${name} body digest`).toBe(blob.digest)
    }
    expect(registry.blobGets(mark).get(blob.digest)?.count ?? 0, 'upstream GETs of the blob').toBe(1)
    const delta = (name: string, labels: Record<string, string> = {}): number => metricSum(after, name, labels) - metricSum(before, name, labels)
    expect(delta('damselfly_piece_bytes_received_total', { from: 'peer' }), 'bytes B got from peers').toBeGreaterThan(0)
    for (const df of [dfA, dfB]) {
      const m = await metrics(df.httpUrl)
      expect(metricSum(m, 'damselfly_upstream_fallbacks_total'), `${df.process.name} fallbacks`).toBe(0)
      expect(metricSum(m, 'damselfly_piece_verify_failures_total'), `${df.process.name} verify failures`).toBe(0)
    }
    for (const df of [dfA, dfB]) {
      // Pieces are committed (and the sidecar written) before the response completes.
      const side = JSON.parse(await readFile(`${cacheFile(df.dataDir, blob.digest)}.json`, 'utf8')) as { pieceSize?: number, pieces: Record<string, string> }
      expect(side.pieceSize, `${df.process.name} sidecar piece size`).toBe(8 * MiB)
      expect(Object.keys(side.pieces).length, `${df.process.name} pieces held`).toBe(layout.pieceCount)
      expect((await auditCache(df.dataDir)).problems, `${df.process.name} cache on disk`).toEqual([])
    }
  })
})
