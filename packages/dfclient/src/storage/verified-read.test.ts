import { randomBytes } from 'node:crypto'
import { mkdtemp, open, rm, truncate } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { afterEach, describe, expect, it } from 'vitest'
import { layoutFor, pieceRange, sha256Of } from '@damselfly/proto'
import { FsPieceCache } from './fs-piece-cache.js'
import { MemoryPieceCache } from './memory-piece-cache.js'
import type { PieceCache } from './piece-cache.js'
import { planVerifiedRead, VerifyingStream } from './verified-read.js'
import { VerifyAheadGate } from './verify-ahead.js'

const MiB = 1024 * 1024
const bytes = new Uint8Array(randomBytes(9 * MiB + 123))
const digest = sha256Of(bytes)
const layout = layoutFor(bytes.byteLength)

async function filled (cache: PieceCache): Promise<PieceCache> {
  for (let i = 0; i < layout.pieceCount; i++) {
    const r = pieceRange(layout, i)
    const piece = bytes.subarray(r.start, r.end)
    await cache.writePiece(digest, layout, i, sha256Of(piece), piece)
  }
  return cache
}

/** Reads a range the way the mirror does (pipeline into a sink); returns what arrived and the error. */
async function drain (cache: PieceCache, start: number, end: number): Promise<{ data: Buffer, error?: Error }> {
  const parts: Buffer[] = []
  const sink = new Writable({ write (chunk: Buffer, _e, cb) { parts.push(chunk); cb() } })
  try {
    await pipeline(cache.readRange(digest, start, end), sink)
    return { data: Buffer.concat(parts) }
  } catch (err) {
    return { data: Buffer.concat(parts), error: err as Error }
  }
}

const dirs: string[] = []
afterEach(async () => { await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) })) })

const caches = [
  { name: 'FsPieceCache', make: async () => { const d = await mkdtemp(join(tmpdir(), 'dfc-vr-')); dirs.push(d); return { cache: await filled(await FsPieceCache.open(d)), dir: d } } },
  { name: 'MemoryPieceCache', make: async () => ({ cache: await filled(new MemoryPieceCache()), dir: undefined }) }
]

const ranges = [
  { name: 'the whole blob', start: 0, end: bytes.byteLength - 1 },
  { name: 'a range inside one piece', start: 500, end: 1499 },
  { name: 'a range across pieces', start: 4 * MiB - 10, end: 8 * MiB + 10 },
  { name: 'the tail', start: 9 * MiB, end: bytes.byteLength - 1 },
  { name: 'one byte', start: 4 * MiB, end: 4 * MiB }
]

describe.each(caches)('$name readRange', ({ make }) => {
  it.each(ranges)('returns exactly $name', async ({ start, end }) => {
    const { cache } = await make()
    const got = await drain(cache, start, end)
    expect(got.error).toBeUndefined()
    expect(got.data.equals(Buffer.from(bytes.subarray(start, end + 1)))).toBe(true)
  })

})

it('refuses at once a range whose pieces are not held', async () => {
  const cache = new MemoryPieceCache()
  const r = pieceRange(layout, 0)
  await cache.writePiece(digest, layout, 0, sha256Of(bytes.subarray(r.start, r.end)), bytes.subarray(r.start, r.end))
  expect(() => cache.readRange(digest, 0, 10)).not.toThrow()
  expect(() => cache.readRange(digest, 0, bytes.byteLength - 1)).toThrow(expect.objectContaining({ code: 'DF_ERR_PIECE_UNAVAILABLE' }))
  expect(() => cache.readRange(digest, 5 * MiB, 5 * MiB + 1)).toThrow(expect.objectContaining({ code: 'DF_ERR_PIECE_UNAVAILABLE' }))
  expect(() => new MemoryPieceCache().readRange(digest, 0, 1)).toThrow(expect.objectContaining({ code: 'DF_ERR_PIECE_UNAVAILABLE' }))
})

describe('FsPieceCache readRange on corrupt data', () => {
  async function corrupted (offset: number): Promise<PieceCache> {
    const d = await mkdtemp(join(tmpdir(), 'dfc-vr-')); dirs.push(d)
    const cache = await filled(await FsPieceCache.open(d))
    const fh = await open(join(d, 'blobs', 'sha256', digest.slice('sha256:'.length)), 'r+')
    await fh.write(Buffer.from([bytes[offset]! ^ 0xff]), 0, 1, offset)
    await fh.close()
    return cache
  }

  // Checked ahead: the corrupt piece is caught before any of its bytes are emitted, whatever the
  // range; what was emitted is a prefix of the right bytes, ending at or before the bad piece.
  const cases = [
    { name: 'whole blob, flipped last byte', flip: bytes.byteLength - 1, start: 0, end: bytes.byteLength - 1 },
    { name: 'whole blob, flipped first byte', flip: 0, start: 0, end: bytes.byteLength - 1 },
    { name: 'whole blob, flipped byte in the middle piece', flip: 5 * MiB, start: 0, end: bytes.byteLength - 1 },
    { name: 'range, flip inside it', flip: 1000, start: 500, end: 1499 },
    { name: 'range, flip past its end in the same piece', flip: 4 * MiB - 1, start: 500, end: 1499 },
    { name: 'range, flip before its start in the same piece', flip: 4 * MiB + 1, start: 8 * MiB - 5, end: 8 * MiB + 5 }
  ]
  it.each(cases)('$name: emits no byte of the corrupt piece, errors with its offset, drops the entry', async ({ flip, start, end }) => {
    const cache = await corrupted(flip)
    const got = await drain(cache, start, end)
    const bad = pieceRange(layout, Math.floor(flip / layout.pieceSize))
    expect(got.error).toMatchObject({ code: 'DF_ERR_PIECE_DIGEST_MISMATCH', details: { offset: bad.start } })
    expect(got.data.byteLength).toBeLessThanOrEqual(Math.max(0, bad.start - start))
    expect(got.data.equals(Buffer.from(bytes.subarray(start, start + got.data.byteLength)))).toBe(true)
    expect(await cache.get(digest)).toBeUndefined()
  })

  it('bytes that change after the ahead check are still caught as they stream (the range never completes)', async () => {
    // The ahead check saw good pieces (the hasher answers the recorded digests), but the bytes that
    // then stream are not those: as if the file changed between the two reads.
    const pieces = new Map(Array.from({ length: layout.pieceCount }, (_, i) => { const r = pieceRange(layout, i); return [i, sha256Of(bytes.subarray(r.start, r.end))] as const }))
    const changed = Buffer.from(bytes)
    changed[6 * MiB] = changed[6 * MiB]! ^ 0xff
    const plan = planVerifiedRead({ digest, layout, pieces }, 0, bytes.byteLength - 1)
    let dropped = 0
    const ahead = new VerifyAheadGate({ layout, pieces, readStart: 0, hashPiece: async (i) => pieces.get(i)!, onCorrupt: async () => { dropped++ } })
    const verifier = new VerifyingStream(plan, { start: 0, end: bytes.byteLength - 1 }, async () => { dropped++ })
    const parts: Buffer[] = []
    const sink = new Writable({ write (chunk: Buffer, _e, cb) { parts.push(chunk); cb() } })
    const chunks = Array.from({ length: Math.ceil(changed.byteLength / MiB) }, (_, i) => changed.subarray(i * MiB, (i + 1) * MiB))
    await expect(pipeline(Readable.from(chunks), ahead, verifier, sink)).rejects.toMatchObject({ code: 'DF_ERR_BLOB_DIGEST_MISMATCH' })
    expect(Buffer.concat(parts).byteLength).toBeLessThan(bytes.byteLength)
    expect(dropped).toBe(1)
  })

  it('a data file shorter than its sidecar says is a size mismatch, and is dropped', async () => {
    const d = await mkdtemp(join(tmpdir(), 'dfc-vr-')); dirs.push(d)
    const cache = await filled(await FsPieceCache.open(d))
    await truncate(join(d, 'blobs', 'sha256', digest.slice('sha256:'.length)), 5 * MiB)
    const got = await drain(cache, 0, bytes.byteLength - 1)
    // The piece past the end hashes short: caught ahead, before its bytes go out.
    expect(got.error).toMatchObject({ code: 'DF_ERR_PIECE_DIGEST_MISMATCH' })
    expect(got.data.byteLength).toBeLessThan(bytes.byteLength)
    expect(await cache.get(digest)).toBeUndefined()
  })
})
