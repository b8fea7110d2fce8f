import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, stat, statfs } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { layoutFor, pieceRange, sha256Of } from '@damselfly/proto'
import { FsPieceCache, type RemovalReason } from './fs-piece-cache.js'

const MiB = 1024 * 1024

/** A random blob of `size` bytes with its layout, written whole into `cache`. */
function blob (size: number): { digest: string, bytes: Uint8Array, write: (cache: FsPieceCache) => Promise<void> } {
  const bytes = new Uint8Array(randomBytes(size))
  const digest = sha256Of(bytes)
  const layout = layoutFor(size)
  return {
    digest,
    bytes,
    write: async (cache) => {
      for (let i = 0; i < layout.pieceCount; i++) {
        const r = pieceRange(layout, i)
        const piece = bytes.subarray(r.start, r.end)
        await cache.writePiece(digest, layout, i, sha256Of(piece), piece)
      }
    }
  }
}

/** What `du` would say for the cache's blob files: allocated 512-byte blocks. */
async function diskBytes (dir: string): Promise<number> {
  const root = join(dir, 'blobs', 'sha256')
  let total = 0
  for (const name of await readdir(root)) total += (await stat(join(root, name))).blocks * 512
  return total
}

describe('FsPieceCache quota and GC', () => {
  let dir: string
  let removed: Array<{ digests: string[], reason: RemovalReason }>
  const onRemoved = (digests: string[], reason: RemovalReason): void => { removed.push({ digests, reason }) }
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'dfc-quota-')); removed = [] })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('evicts least recently used blobs to stay under the quota, on disk too', async () => {
    const quota = 10 * MiB
    const cache = await FsPieceCache.open(dir, { quota: { bytes: quota }, onRemoved })
    const blobs = [blob(3 * MiB), blob(3 * MiB), blob(3 * MiB)]
    for (const b of blobs) await b.write(cache)
    // Reading the first makes the second the least recently used.
    for await (const _ of cache.readRange(blobs[0]!.digest, 0, 100)) { /* drained */ }
    const fourth = blob(3 * MiB)
    await fourth.write(cache)
    expect(removed).toEqual([{ digests: [blobs[1]!.digest], reason: 'quota' }])
    expect(await cache.get(blobs[1]!.digest)).toBeUndefined()
    expect(await cache.get(blobs[0]!.digest)).toBeDefined()
    expect(cache.usage().usedBytes).toBeLessThanOrEqual(quota)
    await cache.close()
    expect(await diskBytes(dir)).toBeLessThanOrEqual(quota)
    expect(await diskBytes(dir)).toBeLessThanOrEqual(cache.usage().usedBytes)
  })

  it('never evicts a leased, pinned or half-committed blob; refuses the piece when nothing can go', async () => {
    const cache = await FsPieceCache.open(dir, { quota: { bytes: 7 * MiB }, onRemoved })
    const a = blob(3 * MiB)
    const b = blob(3 * MiB)
    await a.write(cache)
    await b.write(cache)
    const release = cache.acquire(a.digest)
    cache.pin(b.digest)
    const c = blob(2 * MiB)
    await expect(c.write(cache)).rejects.toMatchObject({ code: 'DF_ERR_CACHE_FULL' })
    expect(removed).toEqual([])
    release()
    await c.write(cache)
    expect(removed).toEqual([{ digests: [a.digest], reason: 'quota' }])
    cache.unpin(b.digest)

    // A blob with a staged, uncommitted piece is busy too.
    const d = blob(5 * MiB)
    const layout = layoutFor(5 * MiB)
    await cache.stagePiece(d.digest, layout, 0, d.bytes.subarray(0, 4 * MiB))
    expect(removed.at(-1)).toEqual({ digests: [b.digest], reason: 'quota' })
    await blob(MiB).write(cache)
    expect(removed.at(-1)).toEqual({ digests: [c.digest], reason: 'quota' })
    expect(cache.hasPieceBytes(d.digest, 0)).toBe(true)
    await cache.close()
  })

  it('a read keeps its blob until the stream closes', async () => {
    const cache = await FsPieceCache.open(dir, { quota: { bytes: 4 * MiB + 64 * 1024 }, onRemoved })
    const a = blob(4 * MiB)
    await a.write(cache)
    const stream = cache.readRange(a.digest, 0, 4 * MiB - 1)
    await expect(blob(MiB).write(cache)).rejects.toMatchObject({ code: 'DF_ERR_CACHE_FULL' })
    const chunks: Buffer[] = []
    for await (const chunk of stream) chunks.push(chunk as Buffer)
    expect(sha256Of(Buffer.concat(chunks))).toBe(a.digest)
    await new Promise(resolve => setImmediate(resolve))
    await blob(MiB).write(cache)
    expect(removed).toEqual([{ digests: [a.digest], reason: 'quota' }])
    await cache.close()
  })

  it('expires blobs unused past the TTL', async () => {
    let now = 1_000_000
    const cache = await FsPieceCache.open(dir, { ttlMs: 60_000, onRemoved, now: () => now })
    const a = blob(MiB)
    const b = blob(MiB)
    await a.write(cache)
    now += 30_000
    await b.write(cache)
    now += 31_000
    expect(cache.sweep()).toEqual([a.digest])
    expect(removed).toEqual([{ digests: [a.digest], reason: 'ttl' }])
    expect(await cache.get(b.digest)).toBeDefined()
    await cache.close()
  })

  it('evicts down to a smaller quota at start, and resolves a % quota against the filesystem', async () => {
    const first = await FsPieceCache.open(dir)
    for (let i = 0; i < 3; i++) await blob(2 * MiB).write(first)
    await first.close()
    const reopened = await FsPieceCache.open(dir, { quota: { bytes: 5 * MiB }, onRemoved })
    expect(removed.map(r => r.reason)).toEqual(['quota'])
    expect(removed[0]!.digests).toHaveLength(1)
    expect(reopened.usage()).toMatchObject({ blobs: 2, quotaBytes: 5 * MiB })
    await reopened.close()

    const fs = await statfs(dir)
    const pct = await FsPieceCache.open(dir, { quota: { percent: 50 } })
    expect(pct.quotaBytes).toBe(Math.floor(fs.blocks * fs.bsize / 2))
    await pct.close()
  })

  it('lists staged pieces and tells the owner about dropped blobs', async () => {
    const cache = await FsPieceCache.open(dir, { onRemoved })
    const a = blob(5 * MiB)
    const layout = layoutFor(5 * MiB)
    await cache.stagePiece(a.digest, layout, 1, a.bytes.subarray(4 * MiB))
    expect(cache.staged()).toEqual([{ digest: a.digest, pieces: [1] }])
    await cache.drop(a.digest)
    expect(cache.staged()).toEqual([])
    expect(removed).toEqual([{ digests: [a.digest], reason: 'dropped' }])
    await cache.drop(a.digest) // unknown now: nothing to report
    expect(removed).toHaveLength(1)
    await cache.close()
  })
})
