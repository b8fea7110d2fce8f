import { describe, expect, it } from 'vitest'
import * as C from './constants.js'
import type { SwarmInit } from './swarm.js'
import { setup, T, view } from '../test-support/swarm-fixture.js'

describe('Swarm: in flight', () => {
  function saturatedA () {
    const h = setup()
    h.announce('A', 'R1', 'R2', 'R3', 'R4', 'R5', 'R6')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    for (const r of ['R1', 'R2', 'R3', 'R4']) expect(h.ask(T, r).first(0)).toBe('A')
    expect(h.ask(T, 'R5').of(0)).toEqual([])
    return h
  }

  it('expires an assignment nobody reported on', () => {
    const h = saturatedA()
    h.advance(C.ASSIGNMENT_TTL_MS - 1)
    h.announce('A', 'R6')
    expect(h.ask(T, 'R6').of(0)).toEqual([])
    h.advance(1)
    expect(h.ask(T, 'R6').first(0)).toBe('A')
  })

  const releases = [
    { name: 'a success result', want: 'A', release: (h: ReturnType<typeof setup>) => { h.swarm.pieceTransferSucceeded({ taskId: T, requester: 'R1', index: 0, source: 'A', bytes: 4 }) } },
    { name: 'a failure result', want: 'A', release: (h: ReturnType<typeof setup>) => { h.swarm.pieceTransferFailed({ taskId: T, requester: 'R1', index: 0, source: 'A', code: 'DF_ERR_PROTOCOL' }) } },
    // R1 now holds the piece with no upload in flight, so it leads; the point is A's slot is free again.
    { name: 'the requester reporting it holds the piece', want: 'R1', release: (h: ReturnType<typeof setup>) => { h.hold(T, 'R1', 0) } },
    { name: 'the requester leaving', want: 'A', release: (h: ReturnType<typeof setup>) => { h.swarm.peerLeft('R1') } }
  ]
  for (const c of releases) {
    it(`releases the slot on ${c.name}`, () => {
      const h = saturatedA()
      c.release(h)
      expect(h.swarm.inFlight('A')).toBe(3)
      expect(h.ask(T, 'R6').first(0)).toBe(c.want)
      expect(h.ask(T, 'R6').of(0)).toContain('A')
    })
  }

  it('charges only the requester\'s window of lacking pieces, and keeps assignments across re-polls', () => {
    const h = setup({ maxUploadsPerPeer: 100 })
    h.announce('A', 'B', 'R')
    h.task(T, 20)
    h.hold(T, 'A', ...Array.from({ length: 20 }, (_, i) => i))
    h.hold(T, 'B', ...Array.from({ length: 20 }, (_, i) => i))
    h.hold(T, 'R', 0, 1)
    const first = h.ask(T, 'R')
    // Only its active pieces (the first ACTIVE_PIECES of its window in reply order) are charged.
    const active = first.order.filter(i => i >= 2).slice(0, C.ACTIVE_PIECES)
    expect(h.swarm.inFlight('A') + h.swarm.inFlight('B')).toBe(C.ACTIVE_PIECES)
    const again = h.ask(T, 'R')
    expect(h.swarm.inFlight('A') + h.swarm.inFlight('B')).toBe(C.ACTIVE_PIECES)
    for (const i of active) expect(again.first(i)).toBe(first.first(i))
    // Holding two of them frees two slots, which go to the next pieces of the window.
    h.hold(T, 'R', active[0] as number, active[1] as number)
    h.ask(T, 'R')
    expect(h.swarm.inFlight('A') + h.swarm.inFlight('B')).toBe(C.ACTIVE_PIECES)
  })

  it('with `from`, assigns only pieces the requester can fetch: lacking ones in [from, from + window)', () => {
    // The piece numbers below are worked out for a window of 8 (twice the active pieces).
    const h = setup({ assignmentWindow: 8 })
    h.announce('R')
    h.task(T, 30)
    // R reads from piece 10 and already fetched 10–13 ahead; its lowest lacking pieces (0–7) are not
    // where it fetches (a range read), and neither is anything from 18 on.
    h.hold(T, 'R', 10, 11, 12, 13)
    h.swarm.piecesRequested({ taskId: T, requester: 'R', from: 10 })
    expect(h.swarm.inFlight('Seed')).toBe(C.ACTIVE_PIECES)
    // Those four are 14–17: a second requester fetching there finds each one claimed…
    h.announce('R2')
    const r2 = view(h.swarm.piecesRequested({ taskId: T, requester: 'R2', from: 14 }))
    for (const i of [14, 15, 16, 17]) expect(r2.of(i)).toEqual([])
    // …while pieces 0–7, which R's lowest lacking would have been, are unclaimed: R2 gets all its slots there.
    const r3 = view(h.swarm.piecesRequested({ taskId: T, requester: 'R2', from: 0 }))
    expect([0, 1, 2, 3, 4, 5, 6, 7].filter(i => r3.first(i) === 'Seed')).toHaveLength(C.ACTIVE_PIECES)
  })

  it('gives seed claims and source waits only to the pieces a requester fetches now, not to the rest of its window', () => {
    // A window of twice the active pieces: R1 fetches one half, R2 the other.
    const window = 2 * C.ACTIVE_PIECES
    const h = setup({ assignmentWindow: window })
    h.announce('R1', 'R2')
    h.task(T, window)
    const seeded = (v: ReturnType<typeof h.ask>): number[] => v.order.filter(i => v.first(i) === 'Seed')
    // R1 claims the seed for its active pieces only; the rest of its window has no source yet.
    const r1 = seeded(h.ask(T, 'R1'))
    expect(r1).toHaveLength(C.ACTIVE_PIECES)
    // R2 gets the seed for the pieces R1 does not fetch: no piece goes out twice.
    const r2 = seeded(h.ask(T, 'R2'))
    expect(r2).toHaveLength(window - C.ACTIVE_PIECES)
    expect(new Set([...r1, ...r2]).size).toBe(window)
    // Long after the wait limit, while R1 still fetches its own pieces, the pieces R2 fetches are not
    // handed to R1 as well: R1 was busy, not starved of a source.
    h.advance(C.MAX_STRETCHED_WAIT_MS)
    const later = h.ask(T, 'R1')
    for (const i of r2) expect(later.of(i)).toEqual([])
    for (const i of r1) expect(later.first(i)).toBe('Seed')
  })

  it('keeps a running seed fetch where it is when a peer comes to hold the piece; the next fetch of it goes to the peer', () => {
    const h = setup()
    h.announce('A', 'R')
    h.task(T, 1)
    expect(h.ask(T, 'R').first(0)).toBe('Seed')
    h.hold(T, 'A', 0)
    // The dfclient never moves a running fetch: the seed is still sending, and A was given nothing.
    expect(h.ask(T, 'R').first(0)).toBe('Seed')
    expect(h.swarm.inFlight('Seed')).toBe(1)
    expect(h.swarm.inFlight('A')).toBe(0)
    // That fetch failed: the piece is planned afresh, from the peer.
    h.swarm.pieceTransferFailed({ taskId: T, requester: 'R', index: 0, source: 'Seed' })
    expect(h.ask(T, 'R').first(0)).toBe('A')
    expect(h.swarm.inFlight('Seed')).toBe(0)
    expect(h.swarm.inFlight('A')).toBe(1)
  })

  it('anonymous requests record nothing', () => {
    const h = setup()
    h.announce('A')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    for (let i = 0; i < 10; i++) expect(h.ask(T).first(0)).toBe('A')
    expect(h.swarm.inFlight('A')).toBe(0)
  })

  it('does not wake pollers for assignments', () => {
    const h = setup()
    h.announce('A', 'R')
    h.task(T, 1)
    h.hold(T, 'A', 0)
    h.changed.length = 0
    h.ask(T, 'R')
    h.swarm.pieceTransferSucceeded({ taskId: T, requester: 'R', index: 0, source: 'A', bytes: 4 })
    expect(h.changed).toEqual([])
  })
})

describe('Swarm: the seed serves a fresh piece to one requester at a time (super-seeding)', () => {
  /** R1 is fetching piece 0 (only the seed has it) from the seed. */
  function claimed (init: SwarmInit = {}) {
    const h = setup(init)
    h.announce('R1', 'R2', 'R3')
    h.task(T, 1)
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
    return h
  }

  it(`sends at most ${C.SEED_FANOUT_PER_PIECE} requester to the seed per piece; the others get no source yet`, () => {
    const h = claimed()
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    expect(h.ask(T, 'R3').of(0)).toEqual([])
    expect(h.swarm.inFlight('Seed')).toBe(1)
    // The claimant itself keeps being told the seed while it fetches.
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
  })

  it('lists the claimant first as soon as it reports the piece, and wakes pollers', () => {
    const h = claimed()
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    h.changed.length = 0
    h.hold(T, 'R1', 0)
    expect(h.changed).toEqual([T])
    expect(h.ask(T, 'R2').of(0)).toEqual(['R1', 'Seed'])
    expect(h.ask(T, 'R3').of(0)).toEqual(['R1', 'Seed'])
    expect(h.swarm.inFlight('Seed')).toBe(0)
  })

  it('lets other requesters fetch other pieces of their window meanwhile', () => {
    const h = setup()
    h.announce('R1', 'R2')
    h.task(T, 2)
    // R1 claims piece 0 only (piece 1 is not published yet); R2 then gets piece 1 from the seed.
    h.swarm.taskStarted({ taskId: T, pieceCount: 2 })
    h.swarm.pieceDigestPublished({ taskId: T, index: 0 })
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
    h.swarm.pieceDigestPublished({ taskId: T, index: 1 })
    const v = h.ask(T, 'R2')
    expect(v.of(0)).toEqual([])
    expect(v.of(1)).toEqual(['Seed'])
  })

  it('offers the seed again when the claimant reports a failure, and wakes pollers', () => {
    const h = claimed()
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    h.changed.length = 0
    h.swarm.pieceResultsReported({ taskId: T, requester: 'R1', results: [{ index: 0, sourcePeerId: 'Seed', ok: false, code: 'DF_ERR_PEER_UNREACHABLE' }] })
    expect(h.changed).toEqual([T])
    expect(h.ask(T, 'R2').of(0)).toEqual(['Seed'])
  })

  it('keeps the claim through a success until the held-piece report arrives, within a grace period', () => {
    const h = claimed()
    h.swarm.pieceResultsReported({ taskId: T, requester: 'R1', results: [{ index: 0, sourcePeerId: 'Seed', ok: true, bytes: 4 }] })
    expect(h.swarm.inFlight('Seed')).toBe(0)
    // Without the grace the piece would have neither claim nor holder now, and R2 would get a second copy.
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    h.advance(C.SEED_ARRIVAL_GRACE_MS - 1)
    expect(h.ask(T, 'R3').of(0)).toEqual([])
    h.advance(1)
    expect(h.ask(T, 'R3').of(0)).toEqual(['Seed'])
  })

  it(`expires a claim ${C.SEED_CLAIM_TTL_MS} ms after the claimant last polled`, () => {
    const h = claimed({ sourceWaitLimitMs: 60_000 })
    h.advance(C.SEED_CLAIM_TTL_MS - 1)
    // A poll by the live claimant renews its claim.
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
    h.advance(C.SEED_CLAIM_TTL_MS - 1)
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    // The claimant went silent (a crash): after the TTL, the seed is offered to the next requester.
    h.advance(1)
    expect(h.ask(T, 'R2').of(0)).toEqual(['Seed'])
  })

  it(`offers the seed anyway to a requester that waited ${C.SOURCE_WAIT_LIMIT_MS} ms for a source, even at the seed's cap`, () => {
    const h = claimed({ seedClaimTtlMs: 60_000, maxUploadsSeed: 1 })
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    expect(h.swarm.msUntilWaitLimit(T, 'R2')).toBe(C.SOURCE_WAIT_LIMIT_MS)
    expect(h.swarm.msUntilWaitLimit(T, 'R1')).toBeUndefined()
    h.advance(C.SOURCE_WAIT_LIMIT_MS - 1)
    // Re-polling does not restart the wait.
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    expect(h.swarm.msUntilWaitLimit(T, 'R2')).toBe(1)
    h.advance(1)
    expect(h.swarm.msUntilWaitLimit(T, 'R2')).toBe(0)
    expect(h.ask(T, 'R2').of(0)).toEqual(['Seed'])
    expect(h.swarm.msUntilWaitLimit(T, 'R2')).toBeUndefined()
    expect(h.swarm.inFlight('Seed')).toBe(2)
  })

  it('stretches the source wait and the claim TTL to cover slow seed transfers, and shrinks them back', () => {
    const h = claimed()
    const seedResult = (requester: string, durationMs: number) =>
      h.swarm.pieceResultsReported({ taskId: T, requester, results: [{ index: 0, sourcePeerId: 'Seed', ok: true, bytes: 4, durationMs }] })
    // Fast seed transfers leave the configured limits alone.
    seedResult('R3', 500)
    expect(h.swarm.sourceWaitLimitMs()).toBe(C.SOURCE_WAIT_LIMIT_MS)
    expect(h.swarm.seedClaimTtlMs()).toBe(C.SEED_CLAIM_TTL_MS)
    // A loaded seed: 5 s per transfer. Waiters must not give up on the first copy after 3 s.
    for (let i = 0; i < 30; i++) seedResult('R3', 5_000)
    const stretched = h.swarm.sourceWaitLimitMs()
    expect(stretched).toBeGreaterThan(9_000)
    expect(stretched).toBeLessThanOrEqual(C.SLOW_SEED_TRANSFERS * 5_000)
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    expect(h.swarm.msUntilWaitLimit(T, 'R2')).toBe(stretched)
    h.advance(C.SOURCE_WAIT_LIMIT_MS)
    // R1's claim (renewed by its poll above) outlives the 3 s TTL and R2 is still waiting for R1's copy.
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    expect(h.swarm.inFlight('Seed')).toBe(1)
    h.advance(stretched - C.SOURCE_WAIT_LIMIT_MS)
    expect(h.ask(T, 'R2').of(0)).toEqual(['Seed'])
    // Absurd reports are bounded, and fast transfers bring the limits back down.
    for (let i = 0; i < 30; i++) seedResult('R3', 10 * 60_000)
    expect(h.swarm.sourceWaitLimitMs()).toBe(C.MAX_STRETCHED_WAIT_MS)
    for (let i = 0; i < 60; i++) seedResult('R3', 100)
    expect(h.swarm.sourceWaitLimitMs()).toBe(C.SOURCE_WAIT_LIMIT_MS)
    expect(h.swarm.seedClaimTtlMs()).toBe(C.SEED_CLAIM_TTL_MS)
  })

  it('forgets a departed claimant\'s claims and waits, and wakes pollers', () => {
    const h = claimed({ sourceWaitLimitMs: 60_000 })
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    h.changed.length = 0
    h.swarm.peerLeft('R1')
    expect(h.changed).toEqual([T])
    expect(h.ask(T, 'R2').of(0)).toEqual(['Seed'])
    h.swarm.peerLeft('R3')
    expect(h.swarm.msUntilWaitLimit(T, 'R3')).toBeUndefined()
  })

  it('spreads a herd of fresh pieces: each piece goes to one requester, and then peer to peer', () => {
    const h = setup()
    const herd = ['R1', 'R2', 'R3', 'R4', 'R5', 'R6']
    h.announce(...herd)
    h.swarm.taskStarted({ taskId: T, pieceCount: 6 })
    // The seed publishes one piece at a time and every requester polls after each (as the long-poll
    // does), in an order that varies as racing long-polls do. The first to poll claims the new piece.
    for (let i = 0; i < 6; i++) {
      h.swarm.pieceDigestPublished({ taskId: T, index: i })
      for (let k = 0; k < herd.length; k++) h.ask(T, herd[(i + k) % herd.length]!)
    }
    // One seed upload per piece (not one per requester and piece), spread over the herd.
    expect(h.swarm.inFlight('Seed')).toBe(6)
    const fromSeed = herd.map(r => h.ask(T, r)).map(v => v.order.filter(i => v.first(i) === 'Seed').length)
    expect(fromSeed.reduce((a, b) => a + b, 0)).toBe(6)
    expect(fromSeed.filter(n => n > 0).length).toBeGreaterThan(1)
    // R1 reports what it got: the others are sent to R1 for those pieces.
    const got = herd.map(r => h.ask(T, r)).flatMap((v, k) => v.order.filter(i => v.first(i) === 'Seed').map(i => [herd[k]!, i] as const))
    const [holder, piece] = got[0]!
    h.hold(T, holder, piece)
    const other = herd.find(r => r !== holder)!
    expect(h.ask(T, other).first(piece)).toBe(holder)
  })
})

describe('budgets in bytes', () => {
  it('a requester fetches one 16 MiB piece at a time, and one such upload fills a peer', () => {
    const h = setup()
    h.announce('H1', 'H2', 'R1', 'R2', 'R3')
    h.swarm.taskStarted({ taskId: T, pieceCount: 4, pieceSize: 16 * 1024 * 1024 })
    for (let i = 0; i < 4; i++) h.swarm.pieceDigestPublished({ taskId: T, index: i })
    h.hold(T, 'H1', 0, 1, 2, 3)
    h.hold(T, 'H2', 0, 1, 2, 3)
    const loads = (): number[] => [h.swarm.inFlight('H1'), h.swarm.inFlight('H2')].sort((a, b) => a - b)

    h.ask(T, 'R1')
    // One upload of four 4 MiB units on one holder (4 MiB pieces: four uploads, two per holder).
    expect(loads()).toEqual([0, 4])
    h.ask(T, 'R2')
    expect(loads()).toEqual([4, 4])
    // Both holders are full and about to free up: no source yet, and no second upload stacked on them.
    const v = h.ask(T, 'R3')
    expect(v.order.filter(i => v.of(i)[0] === 'H1' || v.of(i)[0] === 'H2')).toEqual([])
    expect(loads()).toEqual([4, 4])
    expect(h.swarm.inFlight('Seed')).toBe(0)
  })
})

describe('Swarm: time limits scale with pieces larger than the fetch budget', () => {
  const MiB = 1024 * 1024
  function claimedBig () {
    const h = setup()
    h.announce('R1', 'R2', 'R3')
    h.swarm.taskStarted({ taskId: T, pieceCount: 1, pieceSize: 64 * MiB })
    h.swarm.pieceDigestPublished({ taskId: T, index: 0 })
    h.swarm.taskStarted({ taskId: 'sha256:small', pieceCount: 1, pieceSize: 16 * MiB })
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
    return h
  }

  it('a 64 MiB piece moves 4× as long as a 16 MiB one: its source wait and claim TTL are 4× as long', () => {
    const h = claimedBig()
    expect(h.swarm.sourceWaitLimitMs(T)).toBe(4 * C.SOURCE_WAIT_LIMIT_MS)
    expect(h.swarm.seedClaimTtlMs(T)).toBe(4 * C.SEED_CLAIM_TTL_MS)
    expect(h.swarm.sourceWaitLimitMs('sha256:small')).toBe(C.SOURCE_WAIT_LIMIT_MS)
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    expect(h.swarm.msUntilWaitLimit(T, 'R2')).toBe(4 * C.SOURCE_WAIT_LIMIT_MS)
    // R1 polls (renewing its claim) while its 64 MiB transfer runs; R2 keeps waiting for that copy.
    h.advance(C.SOURCE_WAIT_LIMIT_MS)
    expect(h.ask(T, 'R1').of(0)).toEqual(['Seed'])
    expect(h.ask(T, 'R2').of(0)).toEqual([])
    h.advance(3 * C.SOURCE_WAIT_LIMIT_MS)
    expect(h.ask(T, 'R2').of(0)).toEqual(['Seed'])
  })

  it('records seed transfer durations at the 16 MiB scale, so slow large pieces do not stretch other tasks', () => {
    const h = claimedBig()
    // 64 MiB in 2 s is 16 MiB in 0.5 s: a fast seed.
    for (let i = 0; i < 30; i++) h.swarm.pieceResultsReported({ taskId: T, requester: 'R3', results: [{ index: 0, sourcePeerId: 'Seed', ok: true, bytes: 64 * MiB, durationMs: 2_000 }] })
    expect(h.swarm.sourceWaitLimitMs('sha256:small')).toBe(C.SOURCE_WAIT_LIMIT_MS)
    expect(h.swarm.sourceWaitLimitMs(T)).toBe(4 * C.SOURCE_WAIT_LIMIT_MS)
  })
})
