import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { request } from 'undici'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  Cleanup, MiB, buildTestImage, imageBlobs, metricSum, metrics, pushImage, repoRoot, startDfclient, startRegistry,
  startSupernode, stopAllProcesses,
  type BlobRef, type DamselflyProcess, type Metrics, type Registry, type TestImage
} from '../harness/index.js'
import { streamGet } from '../harness/faults.js'

// The thundering herd on loopback (issue "Swarm", item 5): one registry, one supernode and six
// dfclients; every dfclient asks for every blob of a cold image at the same moment. Asserted are bytes
// and digests only — the upstream served the image at most ~once, each blob at most once, every body
// verified, nothing fell back to the upstream and no piece failed its SHA-256 — never how long anything
// took. Seeded copies and peer bytes are printed; peer sharing and the seed's share are checked separately.

const DFCLIENTS = 6
const SIZES = [1 * MiB, 8 * MiB, 32 * MiB]
const REPO = 'herd/app'
/** Upstream copies allowed: the image once, plus slack for a re-fetched range. */
/** Six dfclients: without peer sharing the seed would send 6 copies; a loaded machine measured 3.34. */
const MAX_SEEDED_COPIES = 5
const MAX_UPSTREAM_COPIES = 1.05

const built = ['packages/supernode/dist/main.js', 'packages/dfclient/dist/main.js'].every((p) => existsSync(join(repoRoot(), p)))
if (!built && process.env.CI !== undefined) throw new Error('swarm herd test needs `npm run build` first')

interface Pulled {
  dfclient: string
  digest: string
  status: number
  bytes: number
  actual: string
  source: string
}

/** GETs a blob through a mirror, hashing the body as it streams; no timing, no retries. */
async function pullBlob (df: DamselflyProcess, blob: BlobRef, query: string): Promise<Pulled> {
  const got = await streamGet(`${df.httpUrl}/v2/${REPO}/blobs/${blob.digest}${query}`)
  const source = got.headers['x-damselfly-source']
  return {
    dfclient: df.process.name,
    digest: blob.digest,
    status: got.status,
    bytes: got.bytes,
    actual: got.digest,
    source: String(Array.isArray(source) ? source[0] : source)
  }
}

/** Polls a condition (every 20 ms, up to 10 s); the assertions that follow report what is missing. */
async function waitUntil (cond: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!cond() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
}

describe.skipIf(!built)(`swarm herd: ${DFCLIENTS} dfclients pull one cold image at once`, () => {
  const cleanup = new Cleanup()
  let registry: Registry
  let image: TestImage
  let supernode: DamselflyProcess
  let dfclients: DamselflyProcess[] = []
  /** What the herd measured, for the peer-sharing check. */
  let herd: { peerBytes: number, seededBytes: number, imageBytes: number, warnings: string } | undefined

  /** Warn/error lines (pino level ≥ 40) of the supernode and every dfclient, for failure messages. */
  const warnings = (): string => {
    const out = [supernode, ...dfclients].flatMap((p) => p.process.lines('stdout')
      .filter((l) => /"level":(4|5|6)0\b/.test(l.line))
      .map((l) => `${p.process.name}: ${l.line.slice(0, 500)}`))
    return out.length === 0 ? '(no warn/error log lines)' : out.join('\n')
  }

  beforeAll(async () => {
    image = await buildTestImage({ sizes: SIZES, seed: 'swarm-herd' })
    registry = await startRegistry({ dir: await cleanup.tempDir() })
    cleanup.defer('registry', registry.stop)
    await pushImage(registry, REPO, 'v1', image, 'oci')

    const registries = [{ host: registry.host, url: registry.url }]
    supernode = await startSupernode({ dir: await cleanup.tempDir(), registries })
    cleanup.defer('supernode', supernode.stop)
    const dirs = await Promise.all(Array.from({ length: DFCLIENTS }, async () => await cleanup.tempDir()))
    // In parallel (each spends most of its start-up loading modules); every started one is stopped even
    // if another fails to start.
    const results = await Promise.allSettled(dirs.map(async (dir, i) => {
      const df = await startDfclient({ name: `dfclient-${i + 1}`, dir, supernode: supernode.httpUrl, registries, defaultRegistry: registry.host })
      cleanup.defer(`dfclient ${i + 1}`, df.stop)
      return df
    }))
    const failed = results.filter((r) => r.status === 'rejected')
    if (failed.length > 0) throw new AggregateError(failed.map((r) => r.reason), `${failed.length} dfclient(s) did not start`)
    dfclients = results.map((r) => (r as PromiseFulfilledResult<DamselflyProcess>).value)
  })

  afterAll(async () => {
    await cleanup.run()
    await stopAllProcesses()
  })

  test('every body verifies, the upstream serves each blob at most once (≤ 1.05 copies), no fallback, no bad piece', async () => {
    const blobs = imageBlobs(image)
    const imageBytes = blobs.reduce((n, b) => n + b.size, 0)
    const dfMetrics = async (): Promise<Metrics[]> => await Promise.all(dfclients.map(async (df) => await metrics(df.httpUrl)))
    const before = await dfMetrics()
    const snBefore = await metrics(supernode.httpUrl)
    const mark = registry.mark()

    // The herd: every dfclient × every blob, all requests issued together. Half the dfclients are asked
    // the way containerd asks a mirror (`?ns=<registry>`), half the way Docker classic and skopeo do
    // (no `ns`, the default registry).
    const ns = `?ns=${encodeURIComponent(registry.host)}`
    const pulled = await Promise.all(dfclients.flatMap((df, i) => blobs.map(async (b) => await pullBlob(df, b, i % 2 === 0 ? ns : ''))))

    // Barrier instead of a sleep: the registry logs a request once its response is written. Wait until
    // every blob's GET is logged, then until a sentinel request sent after all of them is logged too, so
    // any other upstream GET the herd caused is in the log before it is counted.
    await waitUntil(() => blobs.every((b) => (registry.blobGets(mark).get(b.digest)?.count ?? 0) > 0))
    const sentinel = `/v2/?herd-sentinel=${Date.now()}`
    await (await request(`${registry.url}${sentinel}`)).body.dump()
    await waitUntil(() => registry.accessLog().slice(mark).some((e) => e.target === sentinel))

    const after = await dfMetrics()
    const snAfter = await metrics(supernode.httpUrl)
    const gets = registry.blobGets(mark)
    const upstreamBytes = [...gets.values()].reduce((n, s) => n + s.bytes, 0)
    const delta = (i: number, name: string, labels: Record<string, string> = {}): number =>
      metricSum(after[i]!, name, labels) - metricSum(before[i]!, name, labels)
    const peerBytes = dfclients.reduce((n, _, i) => n + delta(i, 'damselfly_piece_bytes_received_total', { from: 'peer' }), 0)
    const fromSeedBytes = dfclients.reduce((n, _, i) => n + delta(i, 'damselfly_piece_bytes_received_total', { from: 'supernode' }), 0)
    const seededBytes = metricSum(snAfter, 'damselfly_piece_bytes_uploaded_total') - metricSum(snBefore, 'damselfly_piece_bytes_uploaded_total')
    const sources = new Map<string, number>()
    for (const p of pulled) sources.set(p.source, (sources.get(p.source) ?? 0) + 1)
    const copies = (n: number): string => (n / imageBytes).toFixed(2)

    // eslint-disable-next-line no-console -- the byte table is this test's report (CI log), not debugging
    console.log([
      `swarm herd: ${DFCLIENTS} dfclients × ${blobs.length} blobs (${(imageBytes / MiB).toFixed(2)} MiB image), ${pulled.length} GETs at once`,
      `  upstream copies      ${copies(upstreamBytes)}  (${upstreamBytes} B in ${[...gets.values()].reduce((n, s) => n + s.count, 0)} blob GETs)`,
      `  seeded copies        ${copies(seededBytes)}  (supernode piece_bytes_uploaded; dfclients got ${copies(fromSeedBytes)} from the supernode)`,
      `  peer bytes           ${copies(peerBytes)}  (${peerBytes} B, piece_bytes_received{from="peer"} summed over the dfclients)`,
      `  X-Damselfly-Source   ${[...sources].map(([s, n]) => `${s} ${n}`).join(', ')}`
    ].join('\n'))

    const why = (what: string): string => `${what}\n--- warn/error log lines ---\n${warnings()}`
    for (const p of pulled) {
      const blob = blobs.find((b) => b.digest === p.digest)!
      expect(p.status, why(`${p.dfclient} GET ${p.digest}: status`)).toBe(200)
      expect(p.bytes, why(`${p.dfclient} GET ${p.digest}: body length`)).toBe(blob.size)
      expect(p.actual, why(`${p.dfclient} GET ${p.digest}: body digest`)).toBe(p.digest)
    }
    for (const b of blobs) {
      expect(gets.get(b.digest)?.count ?? 0, why(`upstream blob GETs of ${b.digest}`)).toBeLessThanOrEqual(1)
    }
    expect(upstreamBytes / imageBytes, why('upstream copies')).toBeLessThanOrEqual(MAX_UPSTREAM_COPIES)
    for (const [i, df] of dfclients.entries()) {
      expect(metricSum(after[i]!, 'damselfly_piece_verify_failures_total'), why(`${df.process.name} piece verify failures`)).toBe(0)
      expect(delta(i, 'damselfly_upstream_fallbacks_total'), why(`${df.process.name} upstream fallbacks`)).toBe(0)
    }
    herd = { peerBytes, seededBytes, imageBytes, warnings: warnings() }
  })

  // Peers share: the scheduler's seed fan-out (one requester per fresh piece at a time, the others
  // wait for that copy; packages/supernode/src/scheduler/rank-sources.ts) and dfclients reporting a
  // piece the moment it is verified keep the supernode near one copy (the issue's bound: ≤ 2) while
  // the dfclients fetch the rest from each other. Seeded copies are asserted only loosely: measured
  // 1.00 in three runs on a quiet machine, but 1.39 and 3.34 with two CPU burners beside the test,
  // because a requester whose 3 s wait for a peer source runs out takes the seed (by design: never
  // worse than no P2P). The swarm bench measures the ≤ 2 goal on real links.
  test('peers exchange pieces in the herd, and the seed does not send every copy', () => {
    expect(herd, 'the herd test above did not finish').toBeDefined()
    const seeded = herd!.seededBytes / herd!.imageBytes
    expect(herd!.peerBytes, `peer bytes; seeded ${seeded.toFixed(2)} copies\n${herd!.warnings}`).toBeGreaterThan(0)
    expect(seeded, `seeded copies\n${herd!.warnings}`).toBeLessThan(MAX_SEEDED_COPIES)
  })
})
