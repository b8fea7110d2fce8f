import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { dfError, layoutFor, pieceRange, sha256Of, type PieceResult, type PieceSource, type PiecesResponse, type TaskInfo } from '@damselfly/proto'
import { MemoryPieceCache } from '../storage/memory-piece-cache.js'
import { openBlobDownload, type BlobDownloadComponents } from './blob-download.js'
import { PEER_UPLOAD_CAP, rankSources } from './piece-scheduler.js'
import type { PieceFetcher, TaskDirectory } from './ports.js'

const MiB = 1024 * 1024
const SELF = 'QmSelf'

function blobFixture (size: number, fill?: 'zeros'): { bytes: Uint8Array, digest: string, task: TaskInfo, pieceDigests: string[] } {
  const bytes = fill === 'zeros' ? new Uint8Array(size) : new Uint8Array(randomBytes(size))
  const digest = sha256Of(bytes)
  const layout = layoutFor(size)
  const pieceDigests = Array.from({ length: layout.pieceCount }, (_, i) => { const r = pieceRange(layout, i); return sha256Of(bytes.subarray(r.start, r.end)) })
  return { bytes, digest, pieceDigests, task: { taskId: digest, digest, size, pieceSize: layout.pieceSize, pieceCount: layout.pieceCount, state: 'running' } }
}

const seed: PieceSource = { peerId: 'QmSeed', addrs: ['/ip4/127.0.0.1/tcp/1'], seed: true }
const peerA: PieceSource = { peerId: 'QmPeerA', addrs: ['/ip4/127.0.0.1/tcp/2'], seed: false }
const self: PieceSource = { peerId: SELF, addrs: ['/ip4/127.0.0.1/tcp/3'], seed: false }

function fakeTasks (task: TaskInfo, pieceDigests: string[], options: { sources?: PieceSource[], pollFails?: boolean, order?: number[] } = {}): TaskDirectory & { reported: number[], results: PieceResult[], polls: number } {
  const t = {
    reported: [] as number[],
    results: [] as PieceResult[],
    polls: 0,
    registerTask: async () => task,
    pollPieces: async (_d: string, since: number, waitMs: number, signal: AbortSignal): Promise<PiecesResponse> => {
      t.polls++
      if (options.pollFails === true) throw dfError('DF_ERR_SUPERNODE_UNAVAILABLE', 'down')
      if (since >= 1) {
        await new Promise(resolve => {
          const onAbort = (): void => { clearTimeout(timer); resolve(undefined) }
          const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(undefined) }, Math.min(waitMs, 50))
          signal.addEventListener('abort', onAbort, { once: true })
        })
      }
      const order = options.order ?? pieceDigests.map((_, i) => i)
      return { task, version: 1, pieces: order.map(index => ({ index, digest: pieceDigests[index] as string, sources: options.sources ?? [self, peerA, seed] })) }
    },
    reportPieces: (_d: string, indexes: number[]) => { t.reported.push(...indexes) },
    reportPieceResults: (_d: string, results: PieceResult[]) => { t.results.push(...results) }
  }
  return t
}

/** Serves the true bytes, with per-piece delays and per-(peer,piece) corruption or failure; verifies like proto fetchPiece. */
function fakeFetcher (bytes: Uint8Array, options: { delayMs?: (index: number) => number, corrupt?: (peerId: string, index: number) => boolean, fail?: (peerId: string, index: number) => boolean, useInto?: boolean } = {}): PieceFetcher & { calls: Array<[string, number]>, buffers: Set<ArrayBufferLike> } {
  const layout = layoutFor(bytes.byteLength)
  const f = {
    calls: [] as Array<[string, number]>,
    buffers: new Set<ArrayBufferLike>(),
    fetchPiece: async (source: PieceSource, request: { taskId: string, index: number }, expected: { size: number, digest: string }, signal: AbortSignal, into?: Uint8Array): Promise<Uint8Array> => {
      f.calls.push([source.peerId, request.index])
      if (source.peerId === SELF) throw new Error('fetched from self')
      await new Promise(resolve => setTimeout(resolve, options.delayMs?.(request.index) ?? 0))
      if (options.fail?.(source.peerId, request.index) === true) throw dfError('DF_ERR_PEER_UNREACHABLE', 'gone')
      signal.throwIfAborted()
      const r = pieceRange(layout, request.index)
      let out: Uint8Array = bytes.slice(r.start, r.end)
      if (options.useInto === true && into !== undefined) {
        f.buffers.add(into.buffer)
        into.set(out)
        out = into.subarray(0, out.byteLength)
      }
      if (options.corrupt?.(source.peerId, request.index) === true) out[0] = (out[0] as number) ^ 0xff
      if (out.byteLength !== expected.size) throw dfError('DF_ERR_SIZE_MISMATCH', 'size')
      if (sha256Of(out) !== expected.digest) throw dfError('DF_ERR_PIECE_DIGEST_MISMATCH', 'digest')
      return out
    }
  }
  return f
}

async function collect (it: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = []
  for await (const c of it) parts.push(c)
  return new Uint8Array(Buffer.concat(parts))
}

const noUpstream = async (): Promise<never> => { throw new Error('upstream not expected') }

describe('BlobDownload', () => {
  it('streams pieces in order although they arrive out of order, caching and reporting each', async () => {
    const fx = blobFixture(10 * MiB + 123) // 3 pieces of 4 MiB
    const tasks = fakeTasks(fx.task, fx.pieceDigests)
    const fetcher = fakeFetcher(fx.bytes, { delayMs: i => [80, 40, 0][i] ?? 0 })
    const cache = new MemoryPieceCache()
    const c: BlobDownloadComponents = { tasks, fetcher, cache, upstream: noUpstream }
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/v2/a/blobs/x', selfPeerId: SELF }, c, new AbortController().signal)
    const out = await collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal))
    expect(Buffer.from(out).equals(Buffer.from(fx.bytes))).toBe(true)
    expect((await cache.get(fx.digest))?.pieces.size).toBe(3)
    expect([...tasks.reported].sort()).toEqual([0, 1, 2])
    expect(fetcher.calls.every(([p]) => p === peerA.peerId)).toBe(true) // never self, peer before seed
  })

  it('keeps 16 MiB in flight: four 4 MiB pieces at once, but two 8 MiB ones', async () => {
    const widest = async (size: number): Promise<number> => {
      const fx = blobFixture(size, 'zeros')
      const fetcher = fakeFetcher(fx.bytes, { delayMs: () => 5 })
      let now = 0
      let max = 0
      const fetch = fetcher.fetchPiece
      fetcher.fetchPiece = async (...args) => {
        max = Math.max(max, ++now)
        try { return await fetch(...args) } finally { now-- }
      }
      const c: BlobDownloadComponents = { tasks: fakeTasks(fx.task, fx.pieceDigests), fetcher, cache: new MemoryPieceCache(), upstream: noUpstream }
      const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF }, c, new AbortController().signal)
      const out = await collect(dl.read({ start: 0, end: size - 1 }, new AbortController().signal))
      expect(sha256Of(out)).toBe(fx.digest)
      return max
    }
    expect(await widest(64 * MiB)).toBe(4)
    // Past 64 pieces of 4 MiB the blob is cut into 8 MiB pieces (proto piece-layout).
    expect(await widest(256 * MiB + 1)).toBe(2)
  })

  it('streams pieces before their (slow) commits finish, and completes only once all are durable', async () => {
    const fx = blobFixture(10 * MiB + 123)
    const tasks = fakeTasks(fx.task, fx.pieceDigests)
    const cache = new MemoryPieceCache()
    const events: string[] = []
    const commit = cache.commitPiece.bind(cache)
    cache.commitPiece = async (digest, layout, index, pieceDigest) => {
      await new Promise(resolve => setTimeout(resolve, 150))
      await commit(digest, layout, index, pieceDigest)
      events.push(`committed ${index}`)
    }
    const c: BlobDownloadComponents = { tasks, fetcher: fakeFetcher(fx.bytes), cache, upstream: noUpstream }
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/v2/a/blobs/x', selfPeerId: SELF }, c, new AbortController().signal)
    const parts: Uint8Array[] = []
    let offset = 0
    for await (const chunk of dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal)) {
      events.push(`read ${Math.floor(offset / (4 * MiB))}`)
      offset += chunk.byteLength
      parts.push(chunk)
    }
    expect(Buffer.concat(parts).equals(Buffer.from(fx.bytes))).toBe(true)
    expect(events.indexOf('read 0')).toBeLessThan(events.indexOf('committed 0'))
    expect(events.indexOf('read 2')).toBeGreaterThan(events.indexOf('committed 2')) // the last byte waits
    expect((await cache.get(fx.digest))?.pieces.size).toBe(3)
    expect([...tasks.reported].sort()).toEqual([0, 1, 2])
  })

  it('retries a corrupt piece from the next source and counts the verify failure', async () => {
    const fx = blobFixture(9 * MiB)
    const failures: number[] = []
    const fetcher = fakeFetcher(fx.bytes, { corrupt: (peer, i) => peer === peerA.peerId && i === 1 })
    const cache = new MemoryPieceCache()
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF }, {
      tasks: fakeTasks(fx.task, fx.pieceDigests), fetcher, cache, upstream: noUpstream, events: { verifyFailure: ({ index }) => { failures.push(index) } }
    }, new AbortController().signal)
    const out = await collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal))
    expect(Buffer.from(out).equals(Buffer.from(fx.bytes))).toBe(true)
    expect(failures).toEqual([1])
    expect(fetcher.calls).toContainEqual([seed.peerId, 1])
  })

  it('serves a range from only the pieces covering it', async () => {
    const fx = blobFixture(10 * MiB)
    const fetcher = fakeFetcher(fx.bytes)
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF }, { tasks: fakeTasks(fx.task, fx.pieceDigests), fetcher, cache: new MemoryPieceCache(), upstream: noUpstream }, new AbortController().signal)
    const start = 4 * MiB + 10
    const end = 5 * MiB
    const out = await collect(dl.read({ start, end }, new AbortController().signal))
    expect(Buffer.from(out).equals(Buffer.from(fx.bytes.subarray(start, end + 1)))).toBe(true)
    expect(new Set(fetcher.calls.map(([, i]) => i))).toEqual(new Set([1]))
  })

  it('throws before the first byte when the supernode stops answering (the caller falls back)', async () => {
    const fx = blobFixture(5 * MiB)
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF }, { tasks: fakeTasks(fx.task, fx.pieceDigests, { pollFails: true }), fetcher: fakeFetcher(fx.bytes), cache: new MemoryPieceCache(), upstream: noUpstream, }, new AbortController().signal)
    await expect(collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal))).rejects.toMatchObject({ code: 'DF_ERR_SUPERNODE_UNAVAILABLE' })
  })

  it('continues from the upstream with the right offset when P2P fails mid-stream, verifying the whole digest', async () => {
    const fx = blobFixture(10 * MiB)
    const ranges: Array<{ start: number, end: number }> = []
    const continued: number[] = []
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF }, {
      tasks: fakeTasks(fx.task, fx.pieceDigests),
      fetcher: fakeFetcher(fx.bytes, { fail: (_p, i) => i >= 1 }),
      cache: new MemoryPieceCache(),
      upstream: async (range) => { ranges.push(range); return (async function * () { yield fx.bytes.slice(range.start, range.end + 1) })() },
      events: { upstreamContinuation: ({ offset }) => { continued.push(offset) } }
    }, new AbortController().signal)
    const out = await collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal))
    expect(Buffer.from(out).equals(Buffer.from(fx.bytes))).toBe(true)
    expect(ranges).toEqual([{ start: 4 * MiB, end: 10 * MiB - 1 }])
    expect(continued).toEqual([4 * MiB])
  })

  it('gives P2P up and continues from the upstream when no source is offered for the piece it waits for (starvation)', async () => {
    const fx = blobFixture(10 * MiB)
    const tasks = fakeTasks(fx.task, fx.pieceDigests)
    const poll = tasks.pollPieces
    // Piece 0 has the seed; the others never get a source, whatever the reader waits.
    tasks.pollPieces = async (...args) => { const r = await poll(...args); return { ...r, pieces: r.pieces.map(p => ({ ...p, sources: p.index === 0 ? [seed] : [] })) } }
    const ranges: Array<{ start: number, end: number }> = []
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF, starvedMs: 200 }, {
      tasks,
      fetcher: fakeFetcher(fx.bytes),
      cache: new MemoryPieceCache(),
      upstream: async (range) => { ranges.push(range); return (async function * () { yield fx.bytes.slice(range.start, range.end + 1) })() }
    }, new AbortController().signal)
    const out = await collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal))
    expect(Buffer.from(out).equals(Buffer.from(fx.bytes))).toBe(true)
    expect(ranges).toEqual([{ start: 4 * MiB, end: 10 * MiB - 1 }])
  })

  it('drops the cache entry and throws when the whole blob does not match its digest', async () => {
    const fx = blobFixture(5 * MiB)
    const wrongDigest = sha256Of(new Uint8Array([1, 2, 3]))
    const task = { ...fx.task, taskId: wrongDigest, digest: wrongDigest }
    const cache = new MemoryPieceCache()
    const dl = await openBlobDownload({ digest: wrongDigest, url: 'http://r/x', selfPeerId: SELF }, { tasks: fakeTasks(task, fx.pieceDigests), fetcher: fakeFetcher(fx.bytes), cache, upstream: noUpstream }, new AbortController().signal)
    await expect(collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal))).rejects.toMatchObject({ code: 'DF_ERR_BLOB_DIGEST_MISMATCH' })
    expect(await cache.get(wrongDigest)).toBeUndefined()
  })

  it('propagates a register failure such as DF_ERR_UPSTREAM_REJECTED', async () => {
    const fx = blobFixture(1024)
    const tasks = { ...fakeTasks(fx.task, fx.pieceDigests), registerTask: async () => { throw dfError('DF_ERR_UPSTREAM_REJECTED', 'nope', { details: { status: 401 } }) } }
    await expect(openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF }, { tasks, fetcher: fakeFetcher(fx.bytes), cache: new MemoryPieceCache(), upstream: noUpstream }, new AbortController().signal)).rejects.toMatchObject({ code: 'DF_ERR_UPSTREAM_REJECTED' })
  })
  it('starts fetches in the order the supernode lists pieces (rarest first) and still streams in order', async () => {
    const fx = blobFixture(22 * MiB) // 6 pieces
    const order = [5, 3, 1, 0, 2, 4]
    const fetcher = fakeFetcher(fx.bytes)
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF, concurrency: 1 }, { tasks: fakeTasks(fx.task, fx.pieceDigests, { order }), fetcher, cache: new MemoryPieceCache(), upstream: noUpstream }, new AbortController().signal)
    const out = await collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal))
    expect(Buffer.from(out).equals(Buffer.from(fx.bytes))).toBe(true)
    expect(fetcher.calls.map(([, i]) => i)).toEqual(order)
  })

  it('keeps to the window: no fetch runs further than `window` pieces ahead of the reader', async () => {
    const fx = blobFixture(22 * MiB)
    const fetcher = fakeFetcher(fx.bytes)
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF, window: 2, concurrency: 4 }, { tasks: fakeTasks(fx.task, fx.pieceDigests, { order: [5, 4, 3, 2, 1, 0] }), fetcher, cache: new MemoryPieceCache(), upstream: noUpstream }, new AbortController().signal)
    const it = dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal)
    await it.next()
    expect(new Set(fetcher.calls.map(([, i]) => i))).toEqual(new Set([0, 1]))
    await collect(it)
  })

  it('reports every fetch attempt\'s result to the scheduler, with codes for failures', async () => {
    const fx = blobFixture(9 * MiB) // 3 pieces
    const peerB: PieceSource = { peerId: 'QmPeerB', addrs: ['/ip4/127.0.0.1/tcp/4'], seed: false }
    const tasks = fakeTasks(fx.task, fx.pieceDigests, { sources: [peerA, seed, peerB, self] })
    const fetcher = fakeFetcher(fx.bytes, { corrupt: (p, i) => p === seed.peerId && i === 1, fail: (p, i) => p === peerA.peerId && i === 1 })
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF }, { tasks, fetcher, cache: new MemoryPieceCache(), upstream: noUpstream }, new AbortController().signal)
    const out = await collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal))
    expect(Buffer.from(out).equals(Buffer.from(fx.bytes))).toBe(true)
    expect(fetcher.calls.filter(([, i]) => i === 1).map(([p]) => p)).toEqual([peerA.peerId, seed.peerId, peerB.peerId])
    const byIndex = (i: number): PieceResult[] => tasks.results.filter(r => r.index === i)
    expect(byIndex(0)).toEqual([{ index: 0, sourcePeerId: peerA.peerId, ok: true, bytes: 4 * MiB, durationMs: expect.any(Number) as number }])
    expect(byIndex(1)).toEqual([
      { index: 1, sourcePeerId: peerA.peerId, ok: false, code: 'DF_ERR_PEER_UNREACHABLE' },
      { index: 1, sourcePeerId: seed.peerId, ok: false, code: 'DF_ERR_PIECE_DIGEST_MISMATCH' },
      { index: 1, sourcePeerId: peerB.peerId, ok: true, bytes: 4 * MiB, durationMs: expect.any(Number) as number }
    ])
    expect(tasks.results.every(r => r.sourcePeerId !== SELF)).toBe(true)
  })

  it('reports no result for a fetch it aborted itself', async () => {
    const fx = blobFixture(5 * MiB)
    const tasks = fakeTasks(fx.task, fx.pieceDigests)
    const fetcher = fakeFetcher(fx.bytes, { delayMs: () => 300 })
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF }, { tasks, fetcher, cache: new MemoryPieceCache(), upstream: noUpstream }, new AbortController().signal)
    const abort = new AbortController()
    const reading = collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, abort.signal))
    await new Promise(resolve => setTimeout(resolve, 100))
    expect(fetcher.calls.length).toBeGreaterThan(0)
    abort.abort()
    await expect(reading).rejects.toBeDefined()
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(tasks.results).toEqual([])
  })

  it('receives into a few reused buffers and streams every piece from the cache, not from those buffers', async () => {
    const fx = blobFixture(40 * MiB) // 10 pieces
    const fetcher = fakeFetcher(fx.bytes, { useInto: true, delayMs: i => (i % 3) * 5 })
    const cache = new MemoryPieceCache()
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF, concurrency: 3 }, { tasks: fakeTasks(fx.task, fx.pieceDigests), fetcher, cache, upstream: noUpstream }, new AbortController().signal)
    const chunks: Uint8Array[] = []
    for await (const c of dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal)) chunks.push(c)
    expect(Buffer.concat(chunks).equals(Buffer.from(fx.bytes))).toBe(true)
    expect(fetcher.buffers.size).toBeLessThanOrEqual(3)
    expect(chunks.every(c => !fetcher.buffers.has(c.buffer) && c.byteLength <= MiB)).toBe(true)
    expect((await cache.get(fx.digest))?.pieces.size).toBe(10)
  })

  it('still streams verified bytes when the cache cannot stage them (full disk), caching nothing', async () => {
    const fx = blobFixture(9 * MiB)
    const cache = new MemoryPieceCache()
    cache.stagePiece = async () => { throw new Error('ENOSPC') }
    const tasks = fakeTasks(fx.task, fx.pieceDigests)
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF }, { tasks, fetcher: fakeFetcher(fx.bytes, { useInto: true }), cache, upstream: noUpstream }, new AbortController().signal)
    const out = await collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal))
    expect(Buffer.from(out).equals(Buffer.from(fx.bytes))).toBe(true)
    expect(tasks.reported).toEqual([])
    expect(await cache.get(fx.digest)).toBeUndefined()
  })

  it('retries the piece the reader waits for from another source when its source is slow, and aborts the slow transfer', async () => {
    const fx = blobFixture(10 * MiB + 123)
    const peerB: PieceSource = { peerId: 'QmPeerB', addrs: ['/ip4/127.0.0.1/tcp/4'], seed: false }
    const tasks = fakeTasks(fx.task, fx.pieceDigests, { sources: [peerA, peerB, seed] })
    const fast = fakeFetcher(fx.bytes)
    const aborted: number[] = []
    const fetcher: PieceFetcher & { calls: Array<[string, number]> } = {
      calls: fast.calls,
      fetchPiece: async (source, request, expected, signal, into) => {
        // peerA stalls on piece 1 until aborted (a wedged upload); everything else is quick.
        if (source.peerId === peerA.peerId && request.index === 1) {
          fast.calls.push([source.peerId, request.index])
          await new Promise<void>(resolve => { signal.addEventListener('abort', () => { resolve() }, { once: true }) })
          aborted.push(request.index)
          throw signal.reason
        }
        return await fast.fetchPiece(source, request, expected, signal, into)
      }
    }
    const retries: Array<{ index: number, slowPeerId: string, peerId: string }> = []
    const c: BlobDownloadComponents = { tasks, fetcher, cache: new MemoryPieceCache(), upstream: noUpstream, events: { slowPieceRetry: (r) => { retries.push(r) } } }
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/v2/a/blobs/x', selfPeerId: SELF, slowPiece: { factor: 4, minMs: 100, unknownMs: 200 } }, c, new AbortController().signal)
    const out = await collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal))
    expect(Buffer.from(out).equals(Buffer.from(fx.bytes))).toBe(true)
    expect(retries).toEqual([expect.objectContaining({ index: 1, slowPeerId: peerA.peerId, peerId: peerB.peerId })])
    expect(fetcher.calls).toContainEqual([peerB.peerId, 1])
    expect(aborted).toEqual([1])
    // The slow source is not reported as failed (we aborted it); the retry is reported as a success.
    expect(tasks.results.filter(r => r.index === 1)).toEqual([expect.objectContaining({ sourcePeerId: peerB.peerId, ok: true })])
  })

  it('does not retry a piece nobody is waiting for yet, however slow', async () => {
    const fx = blobFixture(10 * MiB + 123)
    const peerB: PieceSource = { peerId: 'QmPeerB', addrs: ['/ip4/127.0.0.1/tcp/4'], seed: false }
    const tasks = fakeTasks(fx.task, fx.pieceDigests, { sources: [peerA, peerB, seed] })
    // Piece 2 is slow (400 ms) but the reader is still on piece 0, which takes 600 ms.
    const fetcher = fakeFetcher(fx.bytes, { delayMs: i => [600, 0, 400][i] ?? 0 })
    const retries: number[] = []
    const c: BlobDownloadComponents = { tasks, fetcher, cache: new MemoryPieceCache(), upstream: noUpstream, events: { slowPieceRetry: (r) => { retries.push(r.index) } } }
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/v2/a/blobs/x', selfPeerId: SELF, slowPiece: { factor: 4, minMs: 100, unknownMs: 300 } }, c, new AbortController().signal)
    const out = await collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal))
    expect(Buffer.from(out).equals(Buffer.from(fx.bytes))).toBe(true)
    // Only piece 0 (the one read first) was slow while awaited.
    expect(retries).toEqual([0])
  })

  it('does not spin when the supernode answers a long poll at once without news', async () => {
    const fx = blobFixture(5 * MiB)
    let polls = 0
    const tasks: TaskDirectory = {
      registerTask: async () => fx.task,
      pollPieces: async () => { polls++; return { task: fx.task, version: 7, pieces: [] } },
      reportPieces: () => {}
    }
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/x', selfPeerId: SELF, pollWaitMs: 200 }, { tasks, fetcher: fakeFetcher(fx.bytes), cache: new MemoryPieceCache(), upstream: noUpstream }, new AbortController().signal)
    const abort = new AbortController()
    const reading = collect(dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, abort.signal))
    await new Promise(resolve => setTimeout(resolve, 500))
    abort.abort()
    await expect(reading).rejects.toBeDefined()
    expect(polls).toBeGreaterThanOrEqual(2)
    expect(polls).toBeLessThanOrEqual(5)
  })
})

describe('rankSources', () => {
  const peerB: PieceSource = { peerId: 'QmPeerB', addrs: ['/ip4/127.0.0.1/tcp/4'], seed: false }
  const ids = (l: PieceSource[]): string[] => l.map(s => s.peerId)

  it('keeps the supernode\'s order and drops ourselves', () => {
    expect(ids(rankSources([peerA, self, seed], SELF, () => 0))).toEqual([peerA.peerId, seed.peerId])
    expect(ids(rankSources([seed, peerA], SELF))).toEqual([seed.peerId, peerA.peerId]) // no load known: as listed
  })

  it('puts a peer before a seed listed first when our own fetches do not saturate it and it has not failed us', () => {
    expect(ids(rankSources([seed, peerA, peerB], SELF, () => 0))).toEqual([peerA.peerId, seed.peerId, peerB.peerId])
    expect(ids(rankSources([seed, peerA, peerB], SELF, p => p === peerA.peerId ? PEER_UPLOAD_CAP : 0))).toEqual([peerB.peerId, seed.peerId, peerA.peerId])
    expect(ids(rankSources([seed, peerA], SELF, () => 0, new Set([peerA.peerId])))).toEqual([seed.peerId, peerA.peerId])
    expect(ids(rankSources([seed, peerA], SELF, () => PEER_UPLOAD_CAP))).toEqual([seed.peerId, peerA.peerId])
  })
})
