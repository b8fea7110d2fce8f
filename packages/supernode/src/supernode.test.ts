import { createHash } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { apiPaths, fetchPiece, isDfError, layoutFor, PIECE_PROTOCOL, pieceRange, type PiecesResponse, type TaskInfo } from '@damselfly/proto'
import { blob, serveBytes, startFakeUpstream, type FakeUpstream } from './test-support/fake-upstream.js'
import { startTestSupernode } from './test-support/running-supernode.js'
import type { Supernode } from './supernode.js'

const SIZE = 9 * 1024 * 1024 + 7
const big = blob(SIZE)
const PEER_A = '12D3KooWPeerAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
const PEER_B = '12D3KooWPeerBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB'
let upstream: FakeUpstream
let sn: Supernode
let stopSn: () => Promise<void>
let dataDir: string
let client: Libp2p

async function api<T> (method: string, path: string, body?: unknown): Promise<{ status: number, json: T }> {
  const res = await fetch(`${sn.httpUrl}${path}`, { method, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) })
  const text = await res.text()
  return { status: res.status, json: (text === '' ? undefined : JSON.parse(text)) as T }
}

/** The fake upstream is on loopback: the supernode fetches from it only through a --registry entry. */
function registryEntry (): string {
  const base = new URL(upstream.url('/'))
  return `${base.host}=${base.origin}`
}

async function newNode (): Promise<Libp2p> {
  return await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [tls(), noise()],
    streamMuxers: [yamux()]
  })
}

async function waitSucceeded (): Promise<PiecesResponse> {
  let since = 0
  for (let i = 0; i < 100; i++) {
    const r = await api<PiecesResponse>('GET', `${apiPaths.pieces(big.digest)}?since=${since}&waitMs=2000`)
    if (r.json.task.state !== 'running') return r.json
    since = r.json.version
  }
  throw new Error('task never finished')
}

beforeAll(async () => {
  upstream = await startFakeUpstream({ '/v2/app/blobs/one': serveBytes(big.data, 50) })
  ;({ sn, dataDir, stop: stopSn } = await startTestSupernode({ registry: [registryEntry()] }))
  client = await newNode()
  // The seed serves registered peers only.
  await api('POST', apiPaths.peers, { peerId: client.peerId.toString(), addrs: client.getMultiaddrs().map(a => a.toString().replace(/\/p2p\/.*$/, '')), hostname: 'client' })
})

afterAll(async () => {
  await client.stop()
  await sn.stop()
  await stopSn()
  await upstream.close()
})

describe('supernode end to end', () => {
  it('registers, long-polls pieces as they are hashed, and seeds them over libp2p', async () => {
    const reg = await api<TaskInfo>('POST', apiPaths.tasks, { digest: big.digest, url: upstream.url('/v2/app/blobs/one'), headers: { Authorization: 'Bearer x' } })
    expect(reg.status).toBe(200)
    const layout = layoutFor(SIZE)
    expect(reg.json).toMatchObject({ digest: big.digest, size: SIZE, pieceCount: layout.pieceCount })
    expect(upstream.requests[0]?.headers.authorization).toBe('Bearer x')

    const done = await waitSucceeded()
    expect(done.task.state).toBe('succeeded')
    expect(done.pieces.map(p => p.index)).toEqual([0, 1, 2])
    const seed = done.pieces[0]!.sources.at(-1)!
    expect(seed).toMatchObject({ peerId: sn.peerId, seed: true })

    for (const piece of done.pieces) {
      const r = pieceRange(layout, piece.index)
      expect(piece.digest).toBe(`sha256:${createHash('sha256').update(big.data.subarray(r.start, r.end)).digest('hex')}`)
      const stream = await client.dialProtocol(multiaddr(sn.p2pAddrs[0]!), PIECE_PROTOCOL)
      const bytes = await fetchPiece(stream, { taskId: big.digest, index: piece.index }, { size: r.length, digest: piece.digest }, { signal: AbortSignal.timeout(10_000) })
      expect(Buffer.from(bytes).equals(big.data.subarray(r.start, r.end))).toBe(true)
    }
    const metrics = await (await fetch(`${sn.httpUrl}/metrics`)).text()
    expect(metrics).toMatch(new RegExp(`^damselfly_piece_bytes_uploaded_total ${SIZE}$`, 'm'))
    expect(metrics).toMatch(new RegExp(`^damselfly_upstream_bytes_total ${SIZE}$`, 'm'))
  })

  it('refuses a dialer it never registered with DF_ERR_PEER_NOT_ALLOWED, even for a piece it holds', async () => {
    const stranger = await newNode()
    try {
      const r = pieceRange(layoutFor(SIZE), 0)
      const stream = await stranger.dialProtocol(multiaddr(sn.p2pAddrs[0]!), PIECE_PROTOCOL)
      const err: unknown = await fetchPiece(stream, { taskId: big.digest, index: 0 }, { size: r.length, digest: big.digest }, { signal: AbortSignal.timeout(5000) }).catch((e: unknown) => e)
      expect(isDfError(err) && err.code).toBe('DF_ERR_PEER_NOT_ALLOWED')
    } finally {
      await stranger.stop()
    }
  })

  it('answers unknown pieces with DF_ERR_PIECE_UNAVAILABLE', async () => {
    const stream = await client.dialProtocol(multiaddr(sn.p2pAddrs[0]!), PIECE_PROTOCOL)
    const err: unknown = await fetchPiece(stream, { taskId: `sha256:${'e'.repeat(64)}`, index: 0 }, { size: 1, digest: `sha256:${'e'.repeat(64)}` }, { signal: AbortSignal.timeout(5000) }).catch((e: unknown) => e)
    expect(isDfError(err) && err.code).toBe('DF_ERR_PIECE_UNAVAILABLE')
  })

  it('ranks reporting peers before the seed and never offers a peer to itself', async () => {
    for (const [peerId, port] of [[PEER_A, 1], [PEER_B, 2]] as const) {
      expect((await api('POST', apiPaths.peers, { peerId, addrs: [`/ip4/127.0.0.1/tcp/${port}`], hostname: peerId })).status).toBe(200)
    }
    const before = await api<PiecesResponse>('GET', apiPaths.pieces(big.digest))
    // A report wakes a long-poller waiting on the current version.
    const poll = api<PiecesResponse>('GET', `${apiPaths.pieces(big.digest)}?peerId=${PEER_B}&since=${before.json.version}&waitMs=5000`)
    expect((await api('POST', apiPaths.pieces(big.digest), { peerId: PEER_A, pieces: [0, 1] })).status).toBe(204)
    const after = (await poll).json
    expect(after.version).toBeGreaterThan(before.json.version)
    // Pieces come rarest first for the caller: piece 2 (no peer holds it) before 0 and 1 (whose tie
    // the scheduler breaks per requester).
    expect(after.pieces.map(p => p.index)[0]).toBe(2)
    expect(after.pieces.map(p => p.index).sort()).toEqual([0, 1, 2])
    const piece = (r: PiecesResponse, index: number) => r.pieces.find(p => p.index === index)!
    expect(piece(after, 0).sources.map(s => s.peerId)).toEqual([PEER_A, sn.peerId])
    expect(piece(after, 2).sources.map(s => s.peerId)).toEqual([sn.peerId])
    const self = await api<PiecesResponse>('GET', `${apiPaths.pieces(big.digest)}?peerId=${PEER_A}`)
    expect(piece(self.json, 0).sources.map(s => s.peerId)).toEqual([sn.peerId])
    const outOfRange = await api<{ error: { code: string } }>('POST', apiPaths.pieces(big.digest), { peerId: PEER_A, pieces: [3] })
    expect(outOfRange.status).toBe(400)
    const stranger = await api<{ error: { code: string } }>('POST', apiPaths.pieces(big.digest), { peerId: '12D3KooWStranger', pieces: [0] })
    expect(stranger.json.error.code).toBe('DF_ERR_PEER_UNKNOWN')
  })

  it('answers a known task from LevelDB after a restart without contacting upstream', async () => {
    const requestsBefore = upstream.requests.length
    const peerIdBefore = sn.peerId
    await sn.stop()
    // Same data dir: same peer key, same tasks. The original stop() still removes the dir at the end.
    sn = (await startTestSupernode({ dataDir, registry: [registryEntry()] })).sn
    expect(sn.peerId).toBe(peerIdBefore)
    const reg = await api<TaskInfo>('POST', apiPaths.tasks, { digest: big.digest, url: upstream.url('/v2/app/blobs/one') })
    expect(reg.json.state).toBe('succeeded')
    expect(upstream.requests.length).toBe(requestsBefore)
    const pieces = await api<PiecesResponse>('GET', apiPaths.pieces(big.digest))
    expect(pieces.json.pieces).toHaveLength(3)
  })
})
