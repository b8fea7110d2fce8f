import { randomBytes } from 'node:crypto'
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { layoutFor, pieceRange, sha256Of } from '@damselfly/proto'
import { FsPieceCache } from './fs-piece-cache.js'
import { isComplete } from './piece-cache.js'

const MiB = 1024 * 1024

describe('FsPieceCache', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'dfc-cache-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  const bytes = new Uint8Array(randomBytes(9 * MiB))
  const digest = sha256Of(bytes)
  const layout = layoutFor(bytes.byteLength)
  const piece = (i: number): Uint8Array => { const r = pieceRange(layout, i); return bytes.subarray(r.start, r.end) }

  it('writes pieces at their offsets, reads them back, and keeps them across a restart', async () => {
    const cache = await FsPieceCache.open(dir)
    await cache.writePiece(digest, layout, 2, sha256Of(piece(2)), piece(2))
    await cache.writePiece(digest, layout, 0, sha256Of(piece(0)), piece(0))
    expect(isComplete(await cache.get(digest))).toBe(false)
    await cache.writePiece(digest, layout, 1, sha256Of(piece(1)), piece(1))
    expect(isComplete(await cache.get(digest))).toBe(true)
    await cache.close()

    const reopened = await FsPieceCache.open(dir)
    const entry = await reopened.get(digest)
    expect(isComplete(entry)).toBe(true)
    expect(entry?.pieces.get(1)).toBe(sha256Of(piece(1)))
    expect(Buffer.from((await reopened.readPiece(digest, 2)) as Uint8Array).equals(Buffer.from(piece(2)))).toBe(true)
    const parts: Buffer[] = []
    for await (const c of reopened.readRange(digest, 0, bytes.byteLength - 1)) parts.push(Buffer.from(c))
    expect(sha256Of(Buffer.concat(parts))).toBe(digest)
    expect((await reopened.list()).map(b => b.digest)).toEqual([digest])
  })

  it('concurrent writes to one blob all end up recorded', async () => {
    const cache = await FsPieceCache.open(dir)
    await Promise.all([0, 1, 2].map(async i => { await cache.writePiece(digest, layout, i, sha256Of(piece(i)), piece(i)) }))
    const reopened = await FsPieceCache.open(dir)
    expect((await reopened.get(digest))?.pieces.size).toBe(3)
  })

  it('does not count a partial write (data without metadata, or a torn temp sidecar) as held', async () => {
    const hex = digest.slice('sha256:'.length)
    const cache = await FsPieceCache.open(dir)
    await cache.writePiece(digest, layout, 0, sha256Of(piece(0)), piece(0))
    // Simulate a crash in the middle of piece 1: bytes landed, the sidecar rename never happened.
    await writeFile(join(dir, 'blobs', 'sha256', hex), piece(1), { flag: 'r+' })
    await writeFile(join(dir, 'blobs', 'sha256', `${hex}.json.123.tmp`), '{"digest":')
    const reopened = await FsPieceCache.open(dir)
    const entry = await reopened.get(digest)
    expect([...(entry?.pieces.keys() ?? [])]).toEqual([0])
    expect(await reopened.readPiece(digest, 1)).toBeUndefined()
  })

  it('deletes a blob whose sidecar was cut by another layout rule, and keeps one cut by today\'s', async () => {
    // A 300 MiB blob was 4 MiB pieces before sidecars recorded the piece size; today it is 8 MiB ones.
    const old = `sha256:${'0a'.repeat(32)}`
    const oldHex = old.slice('sha256:'.length)
    const root = join(dir, 'blobs', 'sha256')
    const cache = await FsPieceCache.open(dir)
    await cache.writePiece(digest, layout, 0, sha256Of(piece(0)), piece(0))
    await cache.close()
    await writeFile(join(root, oldHex), piece(0))
    await writeFile(join(root, `${oldHex}.json`), JSON.stringify({ digest: old, size: 300 * MiB, pieces: { 0: sha256Of(piece(0)) } }))
    const reopened = await FsPieceCache.open(dir)
    expect(await reopened.get(old)).toBeUndefined()
    expect((await readdir(root)).filter(n => n.startsWith(oldHex))).toEqual([])
    expect([...((await reopened.get(digest))?.pieces.keys() ?? [])]).toEqual([0])
  })

  it('rejects a piece of the wrong length and drops blobs', async () => {
    const cache = await FsPieceCache.open(dir)
    await expect(cache.writePiece(digest, layout, 0, 'sha256:x', piece(0).subarray(1))).rejects.toThrow(RangeError)
    await cache.writePiece(digest, layout, 0, sha256Of(piece(0)), piece(0))
    await cache.drop(digest)
    expect(await cache.get(digest)).toBeUndefined()
    expect(await readdir(join(dir, 'blobs', 'sha256'))).toEqual([])
  })
  it('stages pieces readable at once but held only after a (shared) commit, and forgets them on drop', async () => {
    const cache = await FsPieceCache.open(dir)
    await cache.stagePiece(digest, layout, 1, piece(1))
    expect(cache.hasPieceBytes(digest, 1)).toBe(true)
    expect(await cache.get(digest)).toBeUndefined() // staged is not held
    const r = pieceRange(layout, 1)
    const parts: Uint8Array[] = []
    for await (const c of cache.readPieceBytes(digest, 1, { start: r.start + 5, end: r.end, chunkSize: MiB })) parts.push(c)
    expect(parts.every(p => p.byteLength <= MiB)).toBe(true)
    expect(Buffer.concat(parts).equals(Buffer.from(piece(1).subarray(5)))).toBe(true)
    await expect((async () => { for await (const c of cache.readPieceBytes(digest, 1, { heldOnly: true })) void c })()).rejects.toMatchObject({ code: 'DF_ERR_PIECE_UNAVAILABLE' })

    await cache.stagePiece(digest, layout, 0, piece(0))
    await Promise.all([cache.commitPiece(digest, layout, 0, sha256Of(piece(0))), cache.commitPiece(digest, layout, 1, sha256Of(piece(1)))])
    expect([...(await cache.get(digest))?.pieces.keys() ?? []].sort()).toEqual([0, 1])
    await expect(cache.commitPiece(digest, layout, 2, sha256Of(piece(2)))).rejects.toMatchObject({ code: 'DF_ERR_PIECE_UNAVAILABLE' }) // never staged

    await cache.stagePiece(digest, layout, 2, piece(2))
    await cache.drop(digest)
    expect(cache.hasPieceBytes(digest, 2)).toBe(false)
    await expect(cache.commitPiece(digest, layout, 2, sha256Of(piece(2)))).rejects.toMatchObject({ code: 'DF_ERR_PIECE_UNAVAILABLE' })
    expect(await cache.get(digest)).toBeUndefined()
    await cache.close()
    const reopened = await FsPieceCache.open(dir)
    expect(await reopened.get(digest)).toBeUndefined()
  })

  it('a stage racing with a drop never makes the old bytes look staged', async () => {
    const cache = await FsPieceCache.open(dir)
    const staging = cache.stagePiece(digest, layout, 0, piece(0))
    void cache.drop(digest)
    await expect(staging).rejects.toMatchObject({ code: 'DF_ERR_PIECE_UNAVAILABLE' })
    expect(cache.hasPieceBytes(digest, 0)).toBe(false)
  })
})
