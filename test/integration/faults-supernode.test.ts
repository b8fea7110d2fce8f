import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, metricSum, metrics, repoRoot, startDfclient, startRegistry, startSupernode, startThrottleProxy, stopAllProcesses,
  type DamselflyProcess, type Registry, type ThrottleProxy
} from '../harness/index.js'
import { killHard, pushedBlob, streamGet, waitFor, type PushedBlob } from '../harness/faults.js'

// Faults around the control plane and the swarm, with real processes: the supernode SIGKILLed in the
// middle of a pull (the pull finishes; a restart keeps its LevelDB state; peers re-announce and
// re-report what they hold), and a peer SIGKILLed while it uploads pieces (they come from elsewhere).
// Asserted are bytes, digests and counts; the only waits are for conditions, with generous limits.

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('fault tests need `npm run build` first')

describe.skipIf(!built)('faults: supernode and peers killed mid-transfer', () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let proxy: ThrottleProxy
  let snDir: string
  let snPort: number
  let supernode: DamselflyProcess
  let dfA: DamselflyProcess
  let dfB: DamselflyProcess
  const registries = (): Array<{ host: string, url: string }> => [{ host: proxy.host, url: proxy.url }]
  const blobUrl = (df: DamselflyProcess, b: PushedBlob): string => `${df.httpUrl}/v2/faults/app/blobs/${b.digest}`

  async function startSn (): Promise<DamselflyProcess> {
    // The same port every time: the dfclients were started with this supernode URL.
    const sn = await startSupernode({ dir: snDir, registries: registries(), extraArgs: snPort === 0 ? [] : ['--listen', `127.0.0.1:${snPort}`] })
    snPort = Number(new URL(sn.httpUrl).port)
    return sn
  }

  beforeAll(async () => {
    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    // The upstream sits behind a throttle, so a pull lasts long enough to kill something during it.
    proxy = await startThrottleProxy(registry.host)
    cleanup.defer('throttle proxy', proxy.stop)
    snDir = await cleanup.tempDir()
    snPort = 0
    supernode = await startSn()
    cleanup.defer('supernode', async () => await supernode.stop())
    const [a, b] = await Promise.all([cleanup.tempDir(), cleanup.tempDir()])
    ;[dfA, dfB] = await Promise.all([
      startDfclient({ name: 'dfclient-a', dir: a, supernode: supernode.httpUrl, registries: registries() }),
      startDfclient({ name: 'dfclient-b', dir: b, supernode: supernode.httpUrl, registries: registries() })
    ])
    cleanup.defer('dfclient A', dfA.stop)
    cleanup.defer('dfclient B', dfB.stop)
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('supernode SIGKILLed mid-pull: the pull completes with the right bytes; after a restart its LevelDB state serves, and peers re-announce with their holdings', async () => {
    const done = await pushedBlob(registry, 'faults/app', 'sn-kill-done', 6 * MiB)
    const cut = await pushedBlob(registry, 'faults/app', 'sn-kill-cut', 24 * MiB)
    // A blob the cluster fully knows before the kill: in the supernode's LevelDB and A's cache.
    const first = await streamGet(blobUrl(dfA, done))
    expect(first.digest).toBe(done.digest)

    const mark = registry.mark()
    proxy.setRate(4 * MiB)
    const fallbacksBefore = metricSum(await metrics(dfA.httpUrl), 'damselfly_upstream_fallbacks_total')
    let killed: Promise<void> | undefined
    const pulled = await streamGet(blobUrl(dfA, cut), {
      onBytes: (n) => { if (killed === undefined && n >= 4 * MiB) killed = killHard(supernode) }
    })
    await killed
    proxy.setRate(undefined)
    expect(killed, 'the supernode was killed while the body streamed').toBeDefined()
    expect(pulled.error, 'the body completed').toBeUndefined()
    expect(pulled.status).toBe(200)
    expect(pulled.bytes).toBe(cut.size)
    expect(pulled.digest, 'no corrupt byte: the whole body hashes to its digest').toBe(cut.digest)
    // P2P was cut off mid-stream; the rest came straight from the upstream, visibly.
    expect(metricSum(await metrics(dfA.httpUrl), 'damselfly_upstream_fallbacks_total')).toBeGreaterThan(fallbacksBefore)
    expect(supernode.process.status?.signal).toBe('SIGKILL')

    // Restart on the same data dir and port.
    supernode = await startSn()
    const snMetrics = async (): Promise<number> => metricSum(await metrics(supernode.httpUrl), 'damselfly_peers')
    // Heartbeats (10 s apart) get 404 from the new process: both peers announce again.
    await waitFor(async () => await snMetrics() === 2, 30_000, 'both dfclients to re-announce')
    const tasks = await metrics(supernode.httpUrl)
    expect(metricSum(tasks, 'damselfly_tasks', { state: 'succeeded' }), 'the verified task survived in LevelDB').toBeGreaterThanOrEqual(1)

    // A's re-announce is followed by its re-report of what it holds: wait until the supernode lists A
    // as a source of every piece of the blob (an anonymous query records nothing).
    const listsA = async (): Promise<boolean> => {
      const res = await fetch(`${supernode.httpUrl}/api/v1/tasks/${encodeURIComponent(done.digest)}/pieces`)
      if (res.status !== 200) return false
      const body = await res.json() as { pieces: Array<{ sources: Array<{ peerId: string }> }> }
      return body.pieces.length > 0 && body.pieces.every((p) => p.sources.some((s) => s.peerId === dfA.peerId))
    }
    await waitFor(listsA, 30_000, 'A to re-report its pieces of the blob')

    // B pulls the blob known before the kill: no upstream fetch (LevelDB + seed files), and pieces
    // come from A, whose re-announce re-reported what it holds.
    const again = registry.mark()
    const before = await metrics(dfB.httpUrl)
    const fromB = await streamGet(blobUrl(dfB, done))
    expect(fromB.digest).toBe(done.digest)
    expect(registry.blobGets(again).get(done.digest)?.count ?? 0, 'no upstream GET for a blob the supernode already verified').toBe(0)
    const after = await metrics(dfB.httpUrl)
    expect(metricSum(after, 'damselfly_piece_bytes_received_total', { from: 'peer' }) - metricSum(before, 'damselfly_piece_bytes_received_total', { from: 'peer' }), 'pieces from A').toBeGreaterThan(0)

    // The blob whose fetch was cut: the restart dropped the partial task; a new pull refetches and verifies it.
    const cutAgain = await streamGet(blobUrl(dfB, cut))
    expect(cutAgain.digest).toBe(cut.digest)
    expect(registry.blobGets(mark).get(cut.digest)?.count ?? 0).toBeGreaterThanOrEqual(1)
  })

  test('peer SIGKILLed while uploading: the pieces it was sending come from the seed, the pull is correct, the upstream is not asked again', async () => {
    const blob = await pushedBlob(registry, 'faults/app', 'peer-kill', 32 * MiB)
    // C holds the whole blob and serves it slowly (3 MiB/s), so B is mid-transfer from it when it dies.
    const dfC = await startDfclient({ name: 'dfclient-c', dir: await cleanup.tempDir(), supernode: supernode.httpUrl, registries: registries(), extraArgs: ['--upload-rate', '3MiB'] })
    cleanup.defer('dfclient C', dfC.stop)
    expect((await streamGet(blobUrl(dfC, blob))).digest).toBe(blob.digest)
    const mark = registry.mark()
    const before = await metrics(dfB.httpUrl)
    const received = async (from: string): Promise<number> => metricSum(await metrics(dfB.httpUrl), 'damselfly_piece_bytes_received_total', { from }) - metricSum(before, 'damselfly_piece_bytes_received_total', { from })

    const pull = streamGet(blobUrl(dfB, blob))
    await waitFor(async () => await received('peer') > 0, 60_000, 'B to receive a piece from C')
    const seedBeforeKill = await received('supernode')
    await killHard(dfC)
    const pulled = await pull
    expect(pulled.error).toBeUndefined()
    expect(pulled.digest, 'every byte right').toBe(blob.digest)
    expect(await received('supernode'), 'the rest came from the seed').toBeGreaterThan(seedBeforeKill)
    expect(registry.blobGets(mark).get(blob.digest)?.count ?? 0, 'no upstream refetch').toBe(0)
    expect(metricSum(await metrics(dfB.httpUrl), 'damselfly_piece_verify_failures_total')).toBe(0)
  })
})
