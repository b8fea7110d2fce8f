import { randomBytes } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { sha256Of } from '../digest.js'
import { encodeFrame } from './frame.js'
import { fetchPiece, servePiece, type PieceOpener } from './exchange.js'
import { memoryStreamPair } from '../testing/memory-stream.js'

const TASK = `sha256:${'b'.repeat(64)}`
const piece = randomBytes(3 * 1024 * 1024 + 17)
const digest = sha256Of(piece)

async function * chunks (data: Uint8Array, size = 100_000): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < data.byteLength; i += size) yield data.subarray(i, i + size)
}

const opener = (data: Uint8Array): PieceOpener => async req => req.index === 0 ? { size: data.byteLength, body: chunks(data) } : undefined

async function exchange (serverData: Uint8Array, index = 0, expected = { size: piece.byteLength, digest }) {
  const [client, server] = memoryStreamPair()
  const signal = AbortSignal.timeout(10_000)
  const served = servePiece(server, opener(serverData), { signal })
  const fetched = fetchPiece(client, { taskId: TASK, index }, expected, { signal })
  const [s, f] = await Promise.allSettled([served, fetched])
  return { served: s.status === 'fulfilled' ? s.value : undefined, fetched: f }
}

describe('piece exchange', () => {
  test('transfers and verifies a piece with backpressure', async () => {
    const { served, fetched } = await exchange(piece)
    expect(fetched.status).toBe('fulfilled')
    if (fetched.status === 'fulfilled') expect(Buffer.from(fetched.value).equals(piece)).toBe(true)
    expect(served?.bytes).toBe(piece.byteLength)
    expect(served?.error).toBeUndefined()
  })

  test('a flipped bit is rejected against the seed digest', async () => {
    const bad = Buffer.from(piece)
    bad.writeUInt8(bad.readUInt8(12345) ^ 1, 12345)
    const { fetched } = await exchange(bad)
    expect(fetched.status).toBe('rejected')
    if (fetched.status === 'rejected') expect(fetched.reason.code).toBe('DF_ERR_PIECE_DIGEST_MISMATCH')
  })

  test('a short piece is a size mismatch', async () => {
    const { fetched } = await exchange(piece.subarray(1))
    expect(fetched.status === 'rejected' && fetched.reason.code).toBe('DF_ERR_SIZE_MISMATCH')
  })

  test('a piece the peer lacks is reported as unavailable', async () => {
    const { fetched, served } = await exchange(piece, 5)
    expect(fetched.status === 'rejected' && fetched.reason.code).toBe('DF_ERR_PIECE_UNAVAILABLE')
    expect(served?.request?.index).toBe(5)
  })

  test('keeps piece bytes delivered in the same read as the response header', async () => {
    // libp2p hands the reader everything in its read buffer as one Uint8ArrayList; when the header and
    // piece bytes share a read, the bytes after the header's chunk are piece data (they were dropped,
    // giving "stream ended after 3162124 of 4194304 bytes").
    const [client, server] = memoryStreamPair({ batch: true, highWater: 4 * 1024 * 1024 })
    const signal = AbortSignal.timeout(10_000)
    const served = servePiece(server, opener(piece), { signal })
    const fetched = await fetchPiece(client, { taskId: TASK, index: 0 }, { size: piece.byteLength, digest }, { signal })
    expect(Buffer.from(fetched).equals(piece)).toBe(true)
    expect((await served).error).toBeUndefined()
  })

  test('keeps backpressure after the first drain (bounded write buffering)', async () => {
    const [client, server] = memoryStreamPair({ batch: true, highWater: 256 * 1024 })
    // An onDrain() that never waits, like libp2p 3.3's after a stream's first drain.
    server.onDrain = async () => {}
    let sentWhileFull = 0
    const send = server.send.bind(server)
    server.send = (data) => { if (server.writableNeedsDrain === true) sentWhileFull++; return send(data) }
    const signal = AbortSignal.timeout(10_000)
    const served = servePiece(server, opener(piece), { signal })
    const fetched = await fetchPiece(client, { taskId: TASK, index: 0 }, { size: piece.byteLength, digest }, { signal })
    expect(Buffer.from(fetched).equals(piece)).toBe(true)
    expect((await served).error).toBeUndefined()
    expect(sentWhileFull).toBe(0)
  })

  test('a connection closing under the stream is an error, not a short piece', async () => {
    const [client, server] = memoryStreamPair()
    const signal = AbortSignal.timeout(10_000)
    const half = piece.subarray(0, 1024 * 1024)
    const served = servePiece(server, async () => ({
      size: piece.byteLength,
      body: (async function * () {
        yield half
        server.dropConnection()
        await new Promise(resolve => setTimeout(resolve, 50))
      })()
    }), { signal })
    const fetched = fetchPiece(client, { taskId: TASK, index: 0 }, { size: piece.byteLength, digest }, { signal })
    await expect(fetched).rejects.toMatchObject({ code: 'DF_ERR_PROTOCOL', message: expect.stringMatching(/without the peer ending the piece/) })
    await served
  })

  test('a peer that half-closes early is a size mismatch', async () => {
    const [client, server] = memoryStreamPair({ batch: true })
    const signal = AbortSignal.timeout(10_000)
    void (async () => {
      for await (const _ of server) break // the request
      server.send(encodeFrame({ ok: true, size: piece.byteLength }))
      server.send(piece.subarray(0, 1000))
      await server.close()
    })()
    await expect(fetchPiece(client, { taskId: TASK, index: 0 }, { size: piece.byteLength, digest }, { signal })).rejects.toMatchObject({ code: 'DF_ERR_SIZE_MISMATCH' })
  })

  test('a malformed request gets a protocol error, not a crash', async () => {
    const [client, server] = memoryStreamPair()
    const served = servePiece(server, opener(piece), { signal: AbortSignal.timeout(5000) })
    client.send(new Uint8Array([5, 0x7b, 0x7d, 0x20, 0x20, 0x20]))
    const result = await served
    expect(result.error?.message).toMatch(/malformed/)
  })
  test('receives into a caller-provided buffer (no per-piece allocation) and refuses one too small', async () => {
    const into = new Uint8Array(piece.byteLength + 1000).fill(7)
    const [client, server] = memoryStreamPair()
    const signal = AbortSignal.timeout(10_000)
    void servePiece(server, opener(piece), { signal })
    const got = await fetchPiece(client, { taskId: TASK, index: 0 }, { size: piece.byteLength, digest }, { signal, into })
    expect(got.buffer).toBe(into.buffer)
    expect(got.byteLength).toBe(piece.byteLength)
    expect(sha256Of(got)).toBe(digest)
    expect(into[piece.byteLength]).toBe(7) // nothing written past the piece

    const [c2, s2] = memoryStreamPair()
    void servePiece(s2, opener(piece), { signal })
    await expect(fetchPiece(c2, { taskId: TASK, index: 0 }, { size: piece.byteLength, digest }, { signal, into: new Uint8Array(10) })).rejects.toMatchObject({ code: 'DF_ERR_PROTOCOL' })
  })
})
