import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { dfError, layoutFor, pieceRange, sha256Of, type PieceSource, type PiecesResponse, type TaskInfo } from '@damselfly/proto'
import { MemoryPieceCache } from '../storage/memory-piece-cache.js'
import { openBlobDownload, type BlobDownloadComponents } from './blob-download.js'
import type { PieceFetcher, TaskDirectory } from './ports.js'

const MiB = 1024 * 1024
const SELF = 'QmSelf'

function blobFixture (size: number): { bytes: Uint8Array, digest: string, task: TaskInfo, pieceDigests: string[] } {
  const bytes = new Uint8Array(randomBytes(size))
  const digest = sha256Of(bytes)
  const layout = layoutFor(size)
  const pieceDigests = Array.from({ length: layout.pieceCount }, (_, i) => { const r = pieceRange(layout, i); return sha256Of(bytes.subarray(r.start, r.end)) })
  return { bytes, digest, pieceDigests, task: { taskId: digest, digest, size, pieceSize: layout.pieceSize, pieceCount: layout.pieceCount, state: 'running' } }
}

const seed: PieceSource = { peerId: 'QmSeed', addrs: ['/ip4/127.0.0.1/tcp/1'], seed: true }
const peerA: PieceSource = { peerId: 'QmPeerA', addrs: ['/ip4/127.0.0.1/tcp/2'], seed: false }
const self: PieceSource = { peerId: SELF, addrs: ['/ip4/127.0.0.1/tcp/3'], seed: false }

function fakeTasks (task: TaskInfo, pieceDigests: string[], options: { sources?: PieceSource[], pollFails?: boolean } = {}): TaskDirectory & { reported: number[], polls: number } {
  const t = {
    reported: [] as number[],
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
      return { task, version: 1, pieces: pieceDigests.map((digest, index) => ({ index, digest, sources: options.sources ?? [self, peerA, seed] })) }
    },
    reportPieces: (_d: string, indexes: number[]) => { t.reported.push(...indexes) }
  }
  return t
}

/** Serves the true bytes, with per-piece delays and per-(peer,piece) corruption or failure; verifies like proto fetchPiece. */
function fakeFetcher (bytes: Uint8Array, options: { delayMs?: (index: number) => number, corrupt?: (peerId: string, index: number) => boolean, fail?: (peerId: string, index: number) => boolean } = {}): PieceFetcher & { calls: Array<[string, number]> } {
  const layout = layoutFor(bytes.byteLength)
  const f = {
    calls: [] as Array<[string, number]>,
    fetchPiece: async (source: PieceSource, request: { taskId: string, index: number }, expected: { size: number, digest: string }): Promise<Uint8Array> => {
      f.calls.push([source.peerId, request.index])
      if (source.peerId === SELF) throw new Error('fetched from self')
      await new Promise(resolve => setTimeout(resolve, options.delayMs?.(request.index) ?? 0))
      if (options.fail?.(source.peerId, request.index) === true) throw dfError('DF_ERR_PEER_UNREACHABLE', 'gone')
      const r = pieceRange(layout, request.index)
      const out = bytes.slice(r.start, r.end)
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

  it('hands pieces to the reader before their (slow) cache writes finish, and completes only once all are durable', async () => {
    const fx = blobFixture(10 * MiB + 123)
    const tasks = fakeTasks(fx.task, fx.pieceDigests)
    const cache = new MemoryPieceCache()
    const events: string[] = []
    const write = cache.writePiece.bind(cache)
    cache.writePiece = async (digest, layout, index, pieceDigest, bytes) => {
      await new Promise(resolve => setTimeout(resolve, 150))
      await write(digest, layout, index, pieceDigest, bytes)
      events.push(`written ${index}`)
    }
    const c: BlobDownloadComponents = { tasks, fetcher: fakeFetcher(fx.bytes), cache, upstream: noUpstream }
    const dl = await openBlobDownload({ digest: fx.digest, url: 'http://r/v2/a/blobs/x', selfPeerId: SELF }, c, new AbortController().signal)
    const parts: Uint8Array[] = []
    for await (const chunk of dl.read({ start: 0, end: fx.bytes.byteLength - 1 }, new AbortController().signal)) {
      events.push(`read ${parts.length}`)
      parts.push(chunk)
    }
    expect(Buffer.concat(parts).equals(Buffer.from(fx.bytes))).toBe(true)
    expect(events.indexOf('read 0')).toBeLessThan(events.indexOf('written 0'))
    expect(events.indexOf('read 2')).toBeGreaterThan(events.indexOf('written 2')) // the last byte waits
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
})
