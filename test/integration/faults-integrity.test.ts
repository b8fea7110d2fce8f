import { existsSync } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, metricSum, metrics, repoRoot, startDfclient, startRegistry, startSupernode, startThrottleProxy, stopAllProcesses,
  type DamselflyProcess, type Registry, type ThrottleProxy
} from '../harness/index.js'
import { auditCache, cacheFile, fileBytes, flipByte, killHard, pushedBlob, streamGet, waitFor, type PushedBlob } from '../harness/faults.js'

// Integrity faults with real processes — the promise is "never a corrupt byte": a peer serving
// wrong bytes (its cache file damaged), a dfclient's own cache damaged on disk, and a dfclient
// SIGKILLed while it writes pieces. Every body is compared with the registry's bytes.

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('fault tests need `npm run build` first')

const PIECE = 4 * MiB

describe.skipIf(!built)('faults: wrong bytes, damaged caches, a dfclient killed while writing', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let proxy: ThrottleProxy
  let supernode: DamselflyProcess
  let dfA: DamselflyProcess
  let dfB: DamselflyProcess
  const registries = (): Array<{ host: string, url: string }> => [{ host: proxy.host, url: proxy.url }]
  const blobUrl = (df: DamselflyProcess, b: PushedBlob): string => `${df.httpUrl}/v2/integrity/app/blobs/${b.digest}`
  const dfclient = async (name: string, dir?: string): Promise<DamselflyProcess> => {
    const df = await startDfclient({ name, dir: dir ?? await cleanup.tempDir(), supernode: supernode.httpUrl, registries: registries() })
    cleanup.defer(name, df.stop)
    return df
  }

  beforeAll(async () => {
    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    proxy = await startThrottleProxy(registry.host)
    cleanup.defer('throttle proxy', proxy.stop)
    supernode = await startSupernode({ dir: await cleanup.tempDir(), registries: registries() })
    cleanup.defer('supernode', supernode.stop)
    ;[dfA, dfB] = await Promise.all([dfclient('dfclient-a'), dfclient('dfclient-b')])
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('a peer serving wrong bytes: each bad piece is rejected and counted, the peer is quarantined for the task, the pull is correct', async () => {
    const blob = await pushedBlob(registry, 'integrity/app', 'bad-peer', 16 * MiB)
    expect((await streamGet(blobUrl(dfA, blob))).digest).toBe(blob.digest)
    // A's cache file goes bad in every piece; A still offers the pieces (it does not re-hash what it serves).
    for (let offset = 1000; offset < blob.size; offset += PIECE) await flipByte(cacheFile(dfA.dataDir, blob.digest), offset)

    const before = metricSum(await metrics(dfB.httpUrl), 'damselfly_piece_verify_failures_total')
    const pulled = await streamGet(blobUrl(dfB, blob), { keep: true })
    expect(pulled.error).toBeUndefined()
    expect(pulled.body!.equals(await fileBytes(blob.path)), 'B delivered exactly the registry\'s bytes').toBe(true)
    const failures = metricSum(await metrics(dfB.httpUrl), 'damselfly_piece_verify_failures_total') - before
    expect(failures, 'pieces from A were rejected by SHA-256').toBeGreaterThanOrEqual(1)
    await supernode.process.waitForLine((l) => l.includes('quarantined') && l.includes(dfA.peerId), 10_000)
    // Quarantined for this task: the supernode offers A to nobody for its pieces.
    const reply = await request(`${supernode.httpUrl}/api/v1/tasks/${blob.digest}/pieces?peerId=${dfB.peerId}`)
    const pieces = (await reply.body.json() as { pieces: Array<{ sources: Array<{ peerId: string }> }> }).pieces
    expect(pieces.length).toBeGreaterThan(0)
    for (const p of pieces) expect(p.sources.map(s => s.peerId)).not.toContain(dfA.peerId)
  })

  test('cache bytes damaged on disk are never served: the bad piece is caught before any of its bytes go out, the entry is dropped and refetched, the body is right', async () => {
    const blob = await pushedBlob(registry, 'integrity/app', 'bad-disk', 12 * MiB)
    const good = await fileBytes(blob.path)
    expect((await streamGet(blobUrl(dfA, blob))).digest).toBe(blob.digest)
    const corruptBefore = metricSum(await metrics(dfA.httpUrl), 'damselfly_cache_corrupt_pieces_total')

    // A byte in the middle piece: piece 0 goes out from the cache, the rest is refetched mid-response.
    await flipByte(cacheFile(dfA.dataDir, blob.digest), PIECE + 12345)
    const mid = await streamGet(blobUrl(dfA, blob), { keep: true })
    expect(mid.status).toBe(200)
    expect(mid.headers['x-damselfly-source']).toBe('local')
    expect(mid.error).toBeUndefined()
    expect(mid.body!.equals(good), 'complete and exactly right').toBe(true)

    // Pull it whole again (so it is cached), then damage the first piece: nothing went out yet, so
    // the request carries on as a miss.
    expect((await streamGet(blobUrl(dfA, blob))).digest).toBe(blob.digest)
    const source = async (): Promise<unknown> => { const r = await request(blobUrl(dfA, blob), { method: 'HEAD' }); await r.body.dump(); return r.headers['x-damselfly-source'] }
    await waitFor(async () => await source() === 'local', 20_000, 'the blob to be whole in A\'s cache again')
    await flipByte(cacheFile(dfA.dataDir, blob.digest), 10)
    const head = await streamGet(blobUrl(dfA, blob), { keep: true })
    expect(head.status).toBe(200)
    expect(head.headers['x-damselfly-source']).toBe('p2p')
    expect(head.body!.equals(good)).toBe(true)

    // A ranged read over damaged bytes: 206 with exactly the asked-for bytes.
    await flipByte(cacheFile(dfA.dataDir, blob.digest), 2 * PIECE + 1)
    const start = PIECE * 2 - 100
    const end = PIECE * 2 + 100
    const ranged = await streamGet(blobUrl(dfA, blob), { headers: { range: `bytes=${start}-${end}` }, keep: true })
    expect(ranged.status).toBe(206)
    expect(ranged.body!.equals(good.subarray(start, end + 1))).toBe(true)

    const m = await metrics(dfA.httpUrl)
    expect(metricSum(m, 'damselfly_cache_corrupt_pieces_total') - corruptBefore, 'each damage was detected').toBeGreaterThanOrEqual(3)
    expect(dfA.process.lines('stdout').some(l => l.line.includes('cached piece failed verification'))).toBe(true)
  })

  test('dfclient SIGKILLed while writing pieces: after a restart its cache holds only whole, verified pieces, and it serves and shares the blob correctly', async () => {
    const blob = await pushedBlob(registry, 'integrity/app', 'kill-writer', 40 * MiB)
    const dir = await cleanup.tempDir()
    let dfD = await dfclient('dfclient-d', dir)
    proxy.setRate(6 * MiB)
    let killed: Promise<void> | undefined
    const pull = await streamGet(blobUrl(dfD, blob), {
      onBytes: (n) => { if (killed === undefined && n >= 2 * PIECE) killed = killHard(dfD) }
    })
    await killed
    proxy.setRate(undefined)
    expect(killed).toBeDefined()
    // The client saw a truncated body, never a complete wrong one.
    expect(pull.bytes).toBeLessThan(blob.size)
    expect(pull.error).toBeDefined()

    const audit = await auditCache(dfD.dataDir)
    expect(audit.problems, 'every piece a sidecar calls held is intact on disk').toEqual([])
    // Sidecar temp files a crash may leave are never read as sidecars.
    const stray = (await readdir(join(dfD.dataDir, 'blobs', 'sha256'))).filter(n => n.endsWith('.tmp'))
    expect(stray.every(n => !n.endsWith('.json'))).toBe(true)

    dfD = await dfclient('dfclient-d-restarted', dir)
    const again = await streamGet(blobUrl(dfD, blob), { keep: true })
    expect(again.error).toBeUndefined()
    expect(again.body!.equals(await fileBytes(blob.path))).toBe(true)
    expect((await auditCache(dfD.dataDir)).problems).toEqual([])
    // Another peer fetching from it gets only good pieces.
    const dfE = await dfclient('dfclient-e')
    const fromE = await streamGet(blobUrl(dfE, blob))
    expect(fromE.digest).toBe(blob.digest)
    expect(metricSum(await metrics(dfE.httpUrl), 'damselfly_piece_verify_failures_total')).toBe(0)
  })
})
