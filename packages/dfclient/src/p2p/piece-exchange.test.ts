import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { pino } from 'pino'
import type { Libp2p } from 'libp2p'
import { PIECE_PROTOCOL, fetchPiece, layoutFor, pieceRange, sha256Of, type ByteStream } from '@damselfly/proto'
import { MemoryPieceCache } from '../storage/memory-piece-cache.js'
import { createP2pNode, type EncrypterName } from './node.js'
import { Libp2pPieceFetcher } from './piece-fetcher.js'
import { registerPieceServer } from './piece-server.js'
import { TokenBucket, UploadGate } from './upload-limiter.js'

describe('piece exchange over libp2p', () => {
  const nodes: Libp2p[] = []
  const dirs: string[] = []
  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async n => { await n.stop() }))
    await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
  })

  async function node (encrypters: EncrypterName[]): Promise<Libp2p> {
    const dir = await mkdtemp(join(tmpdir(), 'dfc-p2p-'))
    dirs.push(dir)
    const n = await createP2pNode({ keyPath: join(dir, 'peer.key'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], encrypters })
    nodes.push(n)
    return n
  }

  for (const encrypters of [['tls'], ['noise']] as EncrypterName[][]) {
    it(`serves a held piece and refuses a missing one (${encrypters.join(',')})`, async () => {
      const blob = new Uint8Array(randomBytes(5 * 1024 * 1024))
      const digest = sha256Of(blob)
      const layout = layoutFor(blob.byteLength)
      const r = pieceRange(layout, 0)
      const piece = blob.subarray(r.start, r.end)
      const cache = new MemoryPieceCache()
      await cache.writePiece(digest, layout, 0, sha256Of(piece), piece)

      const server = await node(encrypters)
      let uploaded = 0
      await registerPieceServer(server, cache, { logger: pino({ level: 'silent' }), onBytes: n => { uploaded += n } })
      await server.start()
      const client = await node(encrypters)
      await client.start()

      const fetcher = new Libp2pPieceFetcher(client)
      const source = { peerId: server.peerId.toString(), addrs: server.getMultiaddrs().map(a => a.toString().replace(`/p2p/${server.peerId.toString()}`, '')), seed: false }
      const got = await fetcher.fetchPiece(source, { taskId: digest, index: 0 }, { size: piece.byteLength, digest: sha256Of(piece) }, AbortSignal.timeout(10_000))
      expect(sha256Of(got)).toBe(sha256Of(piece))
      expect(uploaded).toBe(piece.byteLength)

      await expect(fetcher.fetchPiece(source, { taskId: digest, index: 1 }, { size: blob.byteLength - piece.byteLength, digest: sha256Of(blob.subarray(r.end)) }, AbortSignal.timeout(10_000))).rejects.toMatchObject({ code: 'DF_ERR_PIECE_UNAVAILABLE' })
      await expect(fetcher.fetchPiece(source, { taskId: digest, index: 0 }, { size: piece.byteLength, digest: sha256Of(new Uint8Array(1)) }, AbortSignal.timeout(10_000))).rejects.toMatchObject({ code: 'DF_ERR_PIECE_DIGEST_MISMATCH' })
      expect(client.getConnections(server.peerId)).toHaveLength(1) // one reused connection
    })
  }

  it('fetches several pieces concurrently over a fresh connection', async () => {
    const blob = new Uint8Array(randomBytes(14 * 1024 * 1024))
    const digest = sha256Of(blob)
    const layout = layoutFor(blob.byteLength)
    const cache = new MemoryPieceCache()
    for (let i = 0; i < layout.pieceCount; i++) { const r = pieceRange(layout, i); await cache.writePiece(digest, layout, i, sha256Of(blob.subarray(r.start, r.end)), blob.subarray(r.start, r.end)) }
    const server = await node(['tls', 'noise'])
    await registerPieceServer(server, cache, { logger: pino({ level: 'silent' }), onBytes: () => {} })
    await server.start()
    const client = await node(['tls', 'noise'])
    await client.start()
    const fetcher = new Libp2pPieceFetcher(client)
    const source = { peerId: server.peerId.toString(), addrs: server.getMultiaddrs().map(a => a.toString().replace(`/p2p/${server.peerId.toString()}`, '')), seed: false }
    for (let round = 0; round < 3; round++) {
      const got = await Promise.all(Array.from({ length: layout.pieceCount }, async (_, i) => {
        const r = pieceRange(layout, i)
        return await fetcher.fetchPiece(source, { taskId: digest, index: i }, { size: r.length, digest: sha256Of(blob.subarray(r.start, r.end)) }, AbortSignal.timeout(20_000))
      }))
      expect(sha256Of(Buffer.concat(got))).toBe(digest)
    }
  })

  it('keeps piece bytes that libp2p delivers in one read together with the response header', async () => {
    // A reader that starts late gets libp2p's whole read buffer (header frame + piece data) as one
    // Uint8ArrayList; the piece bytes after the header's chunk used to be dropped (truncated piece).
    // (Below libp2p's 4 MiB read-buffer limit, which a reader this late would otherwise hit.)
    const blob = new Uint8Array(randomBytes(3 * 1024 * 1024))
    const digest = sha256Of(blob)
    const layout = layoutFor(blob.byteLength)
    const cache = new MemoryPieceCache()
    await cache.writePiece(digest, layout, 0, digest, blob)
    const server = await node(['tls'])
    await registerPieceServer(server, cache, { logger: pino({ level: 'silent' }), onBytes: () => {} })
    await server.start()
    const client = await node(['tls'])
    await client.start()
    const stream = await client.dialProtocol(server.getMultiaddrs()[0]!, PIECE_PROTOCOL)
    const lateReader: ByteStream = {
      send: data => stream.send(data),
      onDrain: async options => { await stream.onDrain(options) },
      close: async options => { await stream.close(options) },
      abort: err => { stream.abort(err) },
      async * [Symbol.asyncIterator] () {
        await new Promise(resolve => setTimeout(resolve, 300))
        yield * stream
      }
    }
    const got = await fetchPiece(lateReader, { taskId: digest, index: 0 }, { size: blob.byteLength, digest }, { signal: AbortSignal.timeout(10_000) })
    expect(sha256Of(got)).toBe(digest)
  })

  it('serves under --upload-rate at no more than the configured rate, and refuses when upload slots are busy', async () => {
    const blob = new Uint8Array(randomBytes(1024 * 1024))
    const digest = sha256Of(blob)
    const layout = layoutFor(blob.byteLength)
    const cache = new MemoryPieceCache()
    await cache.writePiece(digest, layout, 0, digest, blob)
    const server = await node(['noise'])
    const rate = 2 * 1024 * 1024
    const burst = 64 * 1024
    const bucket = new TokenBucket({ bytesPerSecond: rate, burstBytes: burst })
    const born = performance.now()
    const gate = new UploadGate({ concurrency: 1, queueLimit: 0 })
    const sent: Array<{ at: number, total: number }> = []
    let total = 0
    await registerPieceServer(server, cache, { logger: pino({ level: 'silent' }), onBytes: n => { total += n; sent.push({ at: performance.now(), total }) }, gate, rate: bucket })
    await server.start()
    const client = await node(['noise'])
    await client.start()
    const fetcher = new Libp2pPieceFetcher(client)
    const source = { peerId: server.peerId.toString(), addrs: server.getMultiaddrs().map(a => a.toString().replace(`/p2p/${server.peerId.toString()}`, '')), seed: false }
    const expected = { size: blob.byteLength, digest }

    // Every slot taken (and no queue): the requester is told to try elsewhere.
    const held = await gate.acquire(AbortSignal.timeout(1000))
    await expect(fetcher.fetchPiece(source, { taskId: digest, index: 0 }, expected, AbortSignal.timeout(10_000))).rejects.toMatchObject({ code: 'DF_ERR_PIECE_UNAVAILABLE' })
    expect(gate.refused).toBe(1)
    held?.()

    const started = performance.now()
    const got = await fetcher.fetchPiece(source, { taskId: digest, index: 0 }, expected, AbortSignal.timeout(20_000))
    expect(sha256Of(got)).toBe(digest)
    // Accounting, not wall time: every byte went through the bucket, and at no point had more left
    // than the burst plus the rate times the bucket's age (a few ms of timer slack allowed).
    expect(bucket.granted).toBe(blob.byteLength)
    expect(total).toBe(blob.byteLength)
    for (const s of sent) expect(s.total).toBeLessThanOrEqual(burst + rate * (s.at - born + 5) / 1000)
    // A generous lower bound only: (1 MiB − 64 KiB) at 2 MiB/s is ~470 ms.
    expect(performance.now() - started).toBeGreaterThan(200)
    expect(gate.active).toBe(0)
  })

  it('serves only dialers on the allow-list: a stranger gets DF_ERR_PEER_NOT_ALLOWED even for a held piece', async () => {
    const blob = new Uint8Array(randomBytes(1024 * 1024))
    const digest = sha256Of(blob)
    const cache = new MemoryPieceCache()
    await cache.writePiece(digest, layoutFor(blob.byteLength), 0, digest, blob)
    const server = await node(['noise'])
    const member = await node(['noise'])
    const stranger = await node(['noise'])
    const asked: string[] = []
    await registerPieceServer(server, cache, { logger: pino({ level: 'silent' }), onBytes: () => {}, allowList: { allows: async (id) => { asked.push(id); return id === member.peerId.toString() } } })
    await Promise.all([server.start(), member.start(), stranger.start()])
    const source = { peerId: server.peerId.toString(), addrs: server.getMultiaddrs().map(a => a.toString().replace(`/p2p/${server.peerId.toString()}`, '')), seed: false }
    const expected = { size: blob.byteLength, digest }
    await expect(new Libp2pPieceFetcher(stranger).fetchPiece(source, { taskId: digest, index: 0 }, expected, AbortSignal.timeout(10_000))).rejects.toMatchObject({ code: 'DF_ERR_PEER_NOT_ALLOWED' })
    const got = await new Libp2pPieceFetcher(member).fetchPiece(source, { taskId: digest, index: 0 }, expected, AbortSignal.timeout(10_000))
    expect(sha256Of(got)).toBe(digest)
    expect(asked).toEqual([stranger.peerId.toString(), member.peerId.toString()])
  })

  it('keeps the peer id across restarts (persisted key)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dfc-key-'))
    dirs.push(dir)
    const a = await createP2pNode({ keyPath: join(dir, 'peer.key'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], encrypters: ['noise'] })
    const b = await createP2pNode({ keyPath: join(dir, 'peer.key'), listen: ['/ip4/127.0.0.1/tcp/0'], announce: [], encrypters: ['noise'] })
    expect(a.peerId.toString()).toBe(b.peerId.toString())
  })
})
