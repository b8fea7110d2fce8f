import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pino } from 'pino'
import { Registry } from 'prom-client'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { API_LIMITS, apiPaths, dfError, MAX_PIECE_SIZE, type PiecesResponse } from '@damselfly/proto'
import { Swarm } from '../scheduler/swarm.js'
import { MemoryTaskStore } from '../tasks/memory-task-store.js'
import { TaskBoard } from '../tasks/task-board.js'
import { buildApp } from './app.js'

const SEED = { peerId: '12D3KooWSeedSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS', addrs: ['/ip4/127.0.0.1/tcp/9'] }
const A = '12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const B = '12D3KooWPeerBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'
const R1 = '12D3KooWReqaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
const R2 = '12D3KooWReqbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'
const DIGEST = `sha256:${'a'.repeat(64)}`
const PIECE_DIGEST = `sha256:${'b'.repeat(64)}`

/** Short, so the long-poll cut below is visible well inside the 5 s the poll asks for. */
const WAIT_LIMIT_MS = 300

let server: Server
let base: string
let swarm: Swarm
const shutdown = new AbortController()

async function call (method: string, path: string, body?: unknown): Promise<{ status: number, json: any }> {
  const res = await fetch(`${base}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) })
  const text = await res.text()
  return { status: res.status, json: text === '' ? undefined : JSON.parse(text) }
}

async function firstSources (requester: string): Promise<string[]> {
  const r = await call('GET', `${apiPaths.pieces(DIGEST)}?peerId=${requester}`)
  expect(r.status).toBe(200)
  return (r.json as PiecesResponse).pieces.find(p => p.index === 0)!.sources.map(s => s.peerId)
}

beforeEach(async () => {
  // The app alone over a memory store: the board feeds the swarm as in createSupernode. One upload
  // per peer makes in-flight effects visible with a single request.
  const now = (): number => Date.now()
  swarm = new Swarm({ maxUploadsPerPeer: 1, sourceWaitLimitMs: WAIT_LIMIT_MS }, { now, seed: () => SEED, onTaskChanged: t => { board.touch(t) } })
  const board = new TaskBoard(new MemoryTaskStore(), now, swarm)
  await board.begin({ taskId: DIGEST, size: 10, pieceSize: 4, pieceCount: 3, createdAt: now() })
  for (const i of [0, 1, 2]) await board.publishPiece(DIGEST, i, PIECE_DIGEST)
  const app = buildApp({
    logger: pino({ level: 'silent' }),
    metrics: new Registry(),
    isReady: () => true,
    swarm,
    board,
    register: async () => { throw dfError('DF_ERR_UPSTREAM_REJECTED', 'not in this test') },
    self: () => SEED,
    now,
    shutdown: shutdown.signal
  })
  server = createServer(app)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  for (const [i, peerId] of [A, B, R1, R2].entries()) {
    expect((await call('POST', apiPaths.peers, { peerId, addrs: [`/ip4/127.0.0.1/tcp/${i + 1}`], hostname: `h${i}` })).status).toBe(200)
  }
  for (const peerId of [A, B]) expect((await call('POST', apiPaths.pieces(DIGEST), { peerId, pieces: [0] })).status).toBe(204)
})

afterEach(async () => {
  await new Promise<void>(resolve => server.close(() => { resolve() }))
})

describe('POST /tasks/:digest/piece-results', () => {
  const ok = { index: 0, sourcePeerId: A, ok: true, bytes: 4, durationMs: 3 }
  const bad = [
    { name: 'no results', body: { peerId: R1, results: [] }, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'too many results', body: { peerId: R1, results: Array.from({ length: API_LIMITS.maxPieceResults + 1 }, () => ok) }, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'unknown field', body: { peerId: R1, results: [{ ...ok, extra: 1 }] }, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'negative index', body: { peerId: R1, results: [{ ...ok, index: -1 }] }, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'bytes above the largest piece', body: { peerId: R1, results: [{ ...ok, bytes: MAX_PIECE_SIZE + 1 }] }, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'bad source peer id', body: { peerId: R1, results: [{ ...ok, sourcePeerId: '0OIl' }] }, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'oversized error code', body: { peerId: R1, results: [{ index: 0, sourcePeerId: A, ok: false, code: 'X'.repeat(API_LIMITS.maxErrorCodeLength + 1) }] }, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'index out of range', body: { peerId: R1, results: [{ ...ok, index: 3 }] }, status: 400, code: 'DF_ERR_BAD_REQUEST' },
    { name: 'unknown reporter', body: { peerId: '12D3KooWStranger', results: [ok] }, status: 404, code: 'DF_ERR_PEER_UNKNOWN' }
  ]
  for (const c of bad) {
    it(`rejects: ${c.name}`, async () => {
      const r = await call('POST', apiPaths.pieceResults(DIGEST), c.body)
      expect(r.status).toBe(c.status)
      expect(r.json.error.code).toBe(c.code)
    })
  }

  it('rejects an unknown task', async () => {
    const r = await call('POST', apiPaths.pieceResults(`sha256:${'f'.repeat(64)}`), { peerId: R1, results: [ok] })
    expect(r.status).toBe(404)
    expect(r.json.error.code).toBe('DF_ERR_TASK_UNKNOWN')
  })

  it('a success frees the source for the next requester', async () => {
    expect(await firstSources(R1)).toEqual([A, B, SEED.peerId])
    // A is busy with R1 (cap 1): R2 is sent to B.
    expect((await firstSources(R2))[0]).toBe(B)
    expect((await call('POST', apiPaths.pieceResults(DIGEST), { peerId: R1, results: [ok] })).status).toBe(204)
    expect(swarm.inFlight(A)).toBe(0)
    expect(swarm.uploadRate(A)).toBeGreaterThan(0)
  })

  it('a digest mismatch takes the source out of the task, and wakes pollers', async () => {
    expect((await firstSources(R1))[0]).toBe(A)
    const before = (await call('GET', apiPaths.pieces(DIGEST))).json as PiecesResponse
    const poll = call('GET', `${apiPaths.pieces(DIGEST)}?peerId=${R2}&since=${before.version}&waitMs=5000`)
    const r = await call('POST', apiPaths.pieceResults(DIGEST), { peerId: R1, results: [{ index: 0, sourcePeerId: A, ok: false, code: 'DF_ERR_PIECE_DIGEST_MISMATCH', durationMs: 40 }] })
    expect(r.status).toBe(204)
    const after = (await poll).json as PiecesResponse
    expect(after.version).toBeGreaterThan(before.version)
    expect(after.pieces.find(p => p.index === 0)!.sources.map(s => s.peerId)).toEqual([B, SEED.peerId])
  })

  it('other failures free the slot without quarantine', async () => {
    expect((await firstSources(R1))[0]).toBe(A)
    const r = await call('POST', apiPaths.pieceResults(DIGEST), { peerId: R1, results: [{ index: 0, sourcePeerId: A, ok: false, code: 'DF_ERR_PEER_UNREACHABLE' }] })
    expect(r.status).toBe(204)
    expect(swarm.inFlight(A)).toBe(0)
    expect(await firstSources(R2)).toContain(A)
  })
})

describe('GET /tasks/:digest/pieces long-poll', () => {
  it('answers a requester told "no source yet" when its wait runs out, with the seed', async () => {
    // Piece 1 is only at the seed: R1 is sent there, R2 is told "no source yet" (one seed copy at a time).
    const sourcesOf = (r: PiecesResponse, index: number): string[] => r.pieces.find(p => p.index === index)!.sources.map(s => s.peerId)
    const r1 = (await call('GET', `${apiPaths.pieces(DIGEST)}?peerId=${R1}`)).json as PiecesResponse
    expect(sourcesOf(r1, 1)).toEqual([SEED.peerId])
    const r2 = (await call('GET', `${apiPaths.pieces(DIGEST)}?peerId=${R2}`)).json as PiecesResponse
    expect(sourcesOf(r2, 1)).toEqual([])
    const started = Date.now()
    const after = (await call('GET', `${apiPaths.pieces(DIGEST)}?peerId=${R2}&since=${r2.version}&waitMs=5000`)).json as PiecesResponse
    const took = Date.now() - started
    expect(took).toBeGreaterThanOrEqual(WAIT_LIMIT_MS - 100)
    expect(took).toBeLessThan(2500)
    expect(sourcesOf(after, 1)).toEqual([SEED.peerId])
  })
})

describe('GET /tasks/:digest/pieces?from=&window=', () => {
  it('lists only the pieces in the window, each with the digest and sources of a full reply', async () => {
    const full = (await call('GET', `${apiPaths.pieces(DIGEST)}?peerId=${R1}`)).json as PiecesResponse
    // A fresh requester (R2) asks for the window [1, 3): pieces 1 and 2, not 0.
    const windowed = await call('GET', `${apiPaths.pieces(DIGEST)}?peerId=${R2}&from=1&window=2`)
    expect(windowed.status).toBe(200)
    const pieces = (windowed.json as PiecesResponse).pieces
    expect(pieces.map(p => p.index).sort()).toEqual([1, 2])
    for (const p of pieces) expect(p.digest).toBe(full.pieces.find(f => f.index === p.index)!.digest)
  })

  it('rejects a window that is not a positive integer', async () => {
    for (const w of ['0', '-1', '1.5', 'x']) {
      const r = await call('GET', `${apiPaths.pieces(DIGEST)}?peerId=${R2}&from=0&window=${w}`)
      expect(r.status, w).toBe(400)
      expect(r.json.error.code).toBe('DF_ERR_BAD_REQUEST')
    }
  })
})
