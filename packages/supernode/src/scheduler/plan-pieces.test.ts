import { describe, expect, it } from 'vitest'
import * as C from './constants.js'
import { Swarm, type PiecePlan, type SwarmInit } from './swarm.js'

// What planning does for swarms beyond a handful of peers: bounded work per piece, the same answers
// when asked for only what a requester can start. The rules themselves are in swarm-*.test.ts.

const SEED = { peerId: 'Seed', addrs: ['/ip4/10.0.0.1/tcp/8003'] }
const T = 'sha256:task'

function setup (init: SwarmInit = {}) {
  let now = 1_000_000
  const swarm = new Swarm(init, { now: () => now, seed: () => SEED })
  return {
    swarm,
    advance: (ms: number) => { now += ms },
    announce: (...ids: string[]) => { for (const id of ids) swarm.peerAnnounced({ peerId: id, addrs: [], hostname: id }) },
    task: (pieceCount: number, published: readonly number[] = Array.from({ length: pieceCount }, (_, i) => i)) => {
      swarm.taskStarted({ taskId: T, pieceCount })
      for (const i of published) swarm.pieceDigestPublished({ taskId: T, index: i })
    },
    /** Makes `id` hold one upload for someone else: an assignment on a private task. */
    saturate: (id: string, uploads: number) => {
      for (let k = 0; k < uploads; k++) {
        const t = `sha256:busy-${id}-${k}`
        swarm.taskStarted({ taskId: t, pieceCount: 1 })
        swarm.pieceDigestPublished({ taskId: t, index: 0 })
        swarm.piecesHeld({ taskId: t, peerId: id, indices: [0] })
        swarm.peerAnnounced({ peerId: `L-${id}-${k}`, addrs: [], hostname: 'l' })
        swarm.piecesRequested({ taskId: t, requester: `L-${id}-${k}` })
      }
    }
  }
}

const ids = (n: number, prefix = 'H'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(4, '0')}`)
const first = (plans: PiecePlan[], index: number): string | undefined => plans.find(p => p.index === index)?.sources[0]?.peerId

describe('planning with many holders', () => {
  it(`ranks a bounded sample per piece and shows successive requesters successive holders`, () => {
    const h = setup()
    const holders = ids(200)
    h.announce(...holders)
    h.task(1)
    for (const id of holders) h.swarm.piecesHeld({ taskId: T, peerId: id, indices: [0] })
    const requesters = ids(20, 'R')
    h.announce(...requesters)
    const firsts = requesters.map(r => first(h.swarm.piecesRequested({ taskId: T, requester: r }), 0))
    // Each requester was handed an idle holder, and none twice: the cursor moved past each sample.
    expect(new Set(firsts).size).toBe(requesters.length)
    for (const f of firsts) expect(h.swarm.inFlight(f!)).toBe(1)
    const plan = h.swarm.piecesRequested({ taskId: T, requester: 'R0000' })[0]!
    expect(plan.sources.length).toBeLessThanOrEqual(C.MAX_SOURCES_PER_PIECE)
  })

  it('finds a holder with a free slot beyond the sample when every sampled holder is saturated', () => {
    const h = setup()
    const holders = ids(40)
    h.announce(...holders)
    h.task(1)
    for (const id of holders) h.swarm.piecesHeld({ taskId: T, peerId: id, indices: [0] })
    const free = holders[C.MAX_HOLDERS_RANKED + C.MAX_USABLE_SEARCH - 1]!
    for (const id of holders) if (id !== free) h.saturate(id, C.MAX_UPLOADS_PER_PEER)
    h.announce('R')
    expect(first(h.swarm.piecesRequested({ taskId: T, requester: 'R' }), 0)).toBe(free)
    // And once that one is busy too: no source yet, not the seed (a slot frees soon).
    h.saturate(free, C.MAX_UPLOADS_PER_PEER - 1)
    h.announce('R2')
    expect(h.swarm.piecesRequested({ taskId: T, requester: 'R2' })[0]!.sources).toEqual([])
  })

  it('does not count a peer silent past its TTL towards rarity, before the sweep drops it', () => {
    const h = setup()
    h.announce('A', 'B', 'S', 'R')
    h.task(2)
    h.swarm.piecesHeld({ taskId: T, peerId: 'A', indices: [0] })
    h.swarm.piecesHeld({ taskId: T, peerId: 'S', indices: [0] })
    h.swarm.piecesHeld({ taskId: T, peerId: 'B', indices: [1] })
    h.advance(C.PEER_TTL_MS)
    for (const id of ['A', 'B', 'R']) expect(h.swarm.peerHeartbeat(id)).toBe(true)
    h.advance(1)
    // S is silent: piece 0 has one live holder, like piece 1, so the two tie and go by index; counting
    // S would make piece 1 the rarer and put it first.
    expect(h.swarm.piecesRequested({ taskId: T }).map(p => p.index)).toEqual([0, 1])
    expect(h.swarm.holders(T, 0)).toEqual(['A'])
  })
})

describe('startableOnly: only what the requester can start, with the same answers and the same records', () => {
  /** Two swarms fed the same events: one answers in full, the other only what can be started. */
  function twins () {
    const a = setup()
    const b = setup()
    const both = (f: (h: ReturnType<typeof setup>) => void): void => { f(a); f(b) }
    return { a, b, both }
  }

  it('returns, for every piece it plans, the plan a full request returns, and leaves the same state', () => {
    const { a, b, both } = twins()
    const peers = ids(30, 'P')
    both(h => { h.announce(...peers); h.task(40) })
    // Holdings spread unevenly over the blob; some holders busy.
    peers.forEach((p, k) => { both(h => { h.swarm.piecesHeld({ taskId: T, peerId: p, indices: Array.from({ length: 40 }, (_, i) => i).filter(i => (i * 7 + k) % 5 === 0 && i < 10 + k) }) }) })
    both(h => { h.saturate('P0003', 4); h.saturate('P0007', 2) })
    for (let round = 0; round < 5; round++) {
      for (const r of peers.slice(0, 12)) {
        const from = (round * 3 + peers.indexOf(r)) % 30
        const full = a.swarm.piecesRequested({ taskId: T, requester: r, from })
        const some = b.swarm.piecesRequested({ taskId: T, requester: r, from, startableOnly: true })
        expect(some.length).toBeLessThanOrEqual(C.ASSIGNMENT_WINDOW)
        const byIndex = new Map(full.map(p => [p.index, p]))
        for (const p of some) expect(p).toEqual(byIndex.get(p.index))
        // Its pieces come in the full reply's order.
        const order = full.map(p => p.index).filter(i => some.some(p => p.index === i))
        expect(some.map(p => p.index)).toEqual(order)
      }
      both(h => { h.advance(700) })
      for (const p of peers) expect(b.swarm.inFlight(p)).toBe(a.swarm.inFlight(p))
      expect(b.swarm.inFlight('Seed')).toBe(a.swarm.inFlight('Seed'))
      for (const r of peers.slice(0, 12)) expect(b.swarm.msUntilWaitLimit(T, r)).toBe(a.swarm.msUntilWaitLimit(T, r))
    }
  })
})

describe('window: only the pieces the requester can fetch, with the same answers and the same records', () => {
  it('lists exactly the published pieces in [from, from + window), each with the plan a full request returns, and leaves the same state', () => {
    const a = setup()
    const b = setup()
    const both = (f: (h: ReturnType<typeof setup>) => void): void => { f(a); f(b) }
    const peers = ids(30, 'P')
    // A blob longer than the window, 9 in 10 pieces published: the window skips the unpublished ones.
    const n = C.ASSIGNMENT_WINDOW + 40
    const published = Array.from({ length: n }, (_, i) => i).filter(i => i % 10 !== 9)
    both(h => { h.announce(...peers); h.task(n, published) })
    peers.forEach((p, k) => { both(h => { h.swarm.piecesHeld({ taskId: T, peerId: p, indices: published.filter(i => (i * 7 + k) % 5 === 0 && i < 10 + 3 * k) }) }) })
    both(h => { h.saturate('P0003', 4); h.saturate('P0007', 2) })
    // The dfclient's window is the scheduler's assignment window (blob-download.ts).
    const window = C.ASSIGNMENT_WINDOW
    for (let round = 0; round < 5; round++) {
      for (const r of peers.slice(0, 12)) {
        const from = (round * 7 + 3 * peers.indexOf(r)) % 60
        const full = a.swarm.piecesRequested({ taskId: T, requester: r, from })
        const some = b.swarm.piecesRequested({ taskId: T, requester: r, from, window })
        const expected = full.map(p => p.index).filter(i => i >= from && i < from + window)
        // Held pieces included, in the full reply's order.
        expect(some.map(p => p.index)).toEqual(expected)
        const byIndex = new Map(full.map(p => [p.index, p]))
        for (const p of some) expect(p).toEqual(byIndex.get(p.index))
      }
      both(h => { h.advance(700) })
      for (const p of peers) expect(b.swarm.inFlight(p)).toBe(a.swarm.inFlight(p))
      expect(b.swarm.inFlight('Seed')).toBe(a.swarm.inFlight('Seed'))
      for (const r of peers.slice(0, 12)) expect(b.swarm.msUntilWaitLimit(T, r)).toBe(a.swarm.msUntilWaitLimit(T, r))
    }
  })
})
